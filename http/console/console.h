#pragma once

// The web console of `keel serve`: static pages compiled into the binary that
// read and act through the HTTP API under /v1/ only (docs/console.md).

#include <httplib.h>

namespace keel::http {

// Serves the console on `server`: `/` (the page) and `/console/<file>`
// (its script and style), with their content types and an ETag so that a
// browser revalidates instead of downloading them again. Reading needs no
// token; the page sends the node's token as a bearer header when it acts.
void MountConsole(httplib::Server& server);

// Strips `br` from a request's Accept-Encoding, so that the answer is gzip
// (or plain) instead. Browsers offer Brotli on loopback, and Debian's httplib
// compresses with it at its slowest quality: 2.5 s of the node's CPU for the
// 770 kB snapshot of a 1,000-task run, against 26 ms with gzip. Called
// before routing, for every request.
void NoBrotli(const httplib::Request& req);

}  // namespace keel::http
