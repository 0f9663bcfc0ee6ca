#!/usr/bin/env python3
"""Checks that keel's floors stand only on the floors below them.

Reads every `#include "..."` line of the modules' sources and every keel
library named in their CMakeLists.txt, and fails (exit 1, one line per
offence naming file and line) when a module reaches a module above it, when a
public header in include/keel/ reaches a floor above its own, or when a
third-party library leaks out of the floors allowed to use it.

  check_layers.py [ROOT]        check the tree at ROOT (default: this repo)
  check_layers.py --self-test   check that a planted offence is found
"""

import os
import re
import sys
import tempfile

# Bottom to top; a module may use only modules before it in this list.
FLOORS = ["base", "schema", "events", "workflow", "store", "actors", "runtime", "http", "tools"]
RANK = {name: i for i, name in enumerate(FLOORS)}

# The public headers belong to the floor that implements them.
PUBLIC_HEADER_FLOOR = {"node.h": "runtime", "http.h": "http", "workflow.h": "workflow"}
DEFAULT_PUBLIC_FLOOR = "base"

# Third-party headers allowed only where the architecture puts them.
CONFINED = {
    "caf/": ("actors/", "runtime/internal/process_registry.cc"),
    "rocksdb/": ("store/",),
    # the HTTP API and the CLI's client; the built-in `http` activity's client
    "httplib.h": ("http/", "tools/", "runtime/internal/builtin_activities.cc"),
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
LIBRARY = re.compile(r"\bkeel_(base|schema|events|workflow|store|actors|runtime|http)\b")


def floor_of_header(path):
    """The floor an included path belongs to, or None when it is not keel's."""
    if path.startswith("keel/"):
        return PUBLIC_HEADER_FLOOR.get(path[len("keel/"):], DEFAULT_PUBLIC_FLOOR)
    head = path.split("/", 1)[0]
    return head if head in RANK else None


def sources(root, directory):
    for base, dirs, files in os.walk(os.path.join(root, directory)):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in sorted(files):
            if name.endswith((".h", ".cc", ".hpp", ".cpp")):
                yield os.path.join(base, name)


def check(root):
    offences = []

    def judge(rel, lineno, own_floor, target_floor, what):
        if target_floor is not None and RANK[target_floor] > RANK[own_floor]:
            offences.append(f"{rel}:{lineno}: {own_floor} reaches up into {target_floor} ({what})")

    def scan_includes(path, own_floor):
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                included = m.group(2)
                if m.group(1) == '"':
                    judge(rel, lineno, own_floor, floor_of_header(included), f'#include "{included}"')
                for prefix, allowed in CONFINED.items():
                    if included.startswith(prefix) and not rel.startswith(allowed):
                        offences.append(f"{rel}:{lineno}: <{included}> outside {', '.join(allowed)}")

    for floor in FLOORS:
        if not os.path.isdir(os.path.join(root, floor)):
            offences.append(f"{floor}/: missing floor directory")
            continue
        for path in sources(root, floor):
            scan_includes(path, floor)
        cmake = os.path.join(root, floor, "CMakeLists.txt")
        if os.path.exists(cmake):
            with open(cmake, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    code = line.split("#", 1)[0]
                    for m in LIBRARY.finditer(code):
                        judge(os.path.relpath(cmake, root), lineno, floor, m.group(1),
                              f"links keel_{m.group(1)}")

    public = os.path.join(root, "include", "keel")
    if os.path.isdir(public):
        for path in sources(root, os.path.join("include", "keel")):
            name = os.path.basename(path)
            scan_includes(path, PUBLIC_HEADER_FLOOR.get(name, DEFAULT_PUBLIC_FLOOR))
            # A public header shows only keel's own types and the standard library.
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if m and m.group(1) == '"' and not m.group(2).startswith("keel/"):
                        offences.append(f"{os.path.relpath(path, root)}:{lineno}: public header "
                                        f'includes internal "{m.group(2)}"')
    else:
        offences.append("include/keel/: missing public headers")
    return offences


def self_test():
    with tempfile.TemporaryDirectory() as root:
        for floor in FLOORS + ["include/keel"]:
            os.makedirs(os.path.join(root, floor))
        def write(rel, text):
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        write("store/ok.cc", '#include "events/codec.h"\n#include "keel/status.h"\n')
        if check(root):
            print("self-test: a clean tree was judged guilty:", check(root))
            return 1
        write("events/up.cc", '#include <string>\n#include "store/event_store.h"\n')
        write("base/node_user.h", '#include "keel/node.h"\n')
        write("workflow/caf_user.cc", "#include <caf/all.hpp>\n")
        write("store/CMakeLists.txt", "keel_library(keel_store DEPS keel_actors)  # keel_http\n")
        write("include/keel/status.h", '#include "store/x.h"\n')
        found = check(root)
        expected = ["events/up.cc:2", "base/node_user.h:1", "workflow/caf_user.cc:1",
                    "store/CMakeLists.txt:1", "include/keel/status.h:1"]
        missing = [e for e in expected if not any(o.startswith(e) for o in found)]
        if missing or len(found) != 6:  # status.h: up into store, and internal
            print("self-test: offences found:", *found, "missed:", missing, sep="\n  ")
            return 1
    print("self-test: every planted offence found")
    return 0


def main(argv):
    if argv[1:2] == ["--self-test"]:
        return self_test()
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    offences = check(root)
    for line in offences:
        print(line)
    if offences:
        print(f"{len(offences)} layering offence(s); floors, bottom to top: {' -> '.join(FLOORS)}")
        return 1
    print(f"layers hold: {' -> '.join(FLOORS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
