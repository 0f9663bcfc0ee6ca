#pragma once

// The layout of a data dir (`--data DIR`): where each part of a node's
// state lives, named once for every module that opens one.

#include <string>

namespace keel::data_dir {

// RocksDB's files: the event log, its indexes and snapshots.
inline std::string Db(const std::string& dir) { return dir + "/db"; }
// The store format version, written before anything else (store/format.h).
inline std::string FormatFile(const std::string& dir) { return dir + "/FORMAT"; }
// A live node's address, pid and token, through which CLI commands find it.
inline std::string NodeJson(const std::string& dir) { return dir + "/node.json"; }
// One file per running `exec` child: its process group, for a node that
// opens the dir after a crash to kill.
inline std::string Children(const std::string& dir) { return dir + "/children"; }
// The queues of the nodes the CLI opens on the dir, one spec a line
// (docs/queues.md); optional.
inline std::string QueuesConf(const std::string& dir) { return dir + "/queues.conf"; }

}  // namespace keel::data_dir
