// icemu-check: judges one conformance-scenario run against the reference models
// (docs/checker.md; docs/models.md "icemu-check").
//
// Inputs (one scenario run, as guest-tests/runner writes it, docs/conformance.md "Artifacts"):
//   - run.json (RunRecord::to_json(): steps with request/reply, snapshots with crypto_state and
//     event_log_bytes after every step, disk_map, hello);
//   - the scenario JSON (controllers, LUs, virtio disks);
//   - one event log per controller (<ctrl>.events.jsonl, docs/event-log.md);
//   - optionally the raw LU images (<ctrl>-lu<N>-<name>.img, virtio-<name>.img).
// Output: one Verdict per invariant (pass / fail / not-applicable with a reason).
//
// Every prediction comes from icemu::models (fscrypt keys and DUNs, dm_passthrough profiles and
// reload rule, ufshci_crypto::LogReplay slot tables, keyslots::TrafficChecker, XTS); the
// checker never uses the device's code.
#pragma once

#include "icemu/models/dm_passthrough.hpp"
#include "icemu/models/events.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace icemu::checker {

using json = nlohmann::json;

/// One controller's event log: the events, the byte offset of each line (to assign events to
/// steps with run.json's event_log_bytes) and a parse error if the log is malformed.
struct LogInput {
    std::string ctrl;
    std::string path; ///< for messages ("" when built in memory)
    std::vector<models::events::Event> events;
    std::vector<std::uint64_t> offsets; ///< offsets[i]: byte offset of events[i]'s line
    std::string error;                  ///< "" or "<path> line N: ..." (LogError)
    std::size_t error_line = 0;         ///< 1-based line of `error`, 0 if none
    bool torn_tail = false;             ///< the last line had no newline and was ignored
};

/// Parses a log held in memory (strict: models::events::parse_log rules). A torn last line
/// (no trailing newline, QEMU killed mid-write) is ignored and flagged; any other malformed
/// line sets `error` with its line number and leaves `events` empty.
LogInput parse_log_text(std::string ctrl, std::string_view text, std::string path = "");

struct Inputs {
    json scenario;                             ///< null when unknown
    json run;                                  ///< run.json
    std::map<std::string, LogInput> logs;      ///< controller id -> log
    std::map<std::string, std::string> images; ///< scenario disk name -> raw image path
    std::vector<std::string> notes;            ///< what was found / assumed while loading
};

/// Loads an artifacts directory: run.json, the scenario (`scenario_path`, else
/// <dir>/scenario.json, else <scenario_dir>/<dir name>.json when `scenario_dir` is given),
/// <ctrl>.events.jsonl and the images. Throws std::runtime_error when run.json is unreadable.
Inputs load_artifacts(const std::string& dir, const std::string& scenario_path = "",
                      const std::string& scenario_dir = "");

/// Reads a JSON file (run.json or a scenario; `//` line comments allowed).
json read_json_file(const std::string& path);

enum class Status { pass, fail, not_applicable };
std::string_view to_string(Status s);

struct Verdict {
    int invariant = 0; ///< 1..10 as in docs/checker.md; 0 = the logs themselves
    std::string name;  ///< short id, e.g. "keys-armed"
    std::string title;
    Status status = Status::not_applicable;
    std::string level;  ///< "model", "consistency", "model+consistency", ... ("" when n/a)
    std::string reason; ///< one line: why it passed / failed / does not apply
    std::vector<std::string> details; ///< one line per finding (fails) or per fact checked
};

struct Options {
    /// The kernel's rules (models/kernel_rules.hpp); default: from hello.release, and a release
    /// outside the rule table's series is an error (std::invalid_argument), never a default.
    std::optional<models::kernel::Rules> kernel;
    bool check_media = true;                      ///< invariant 7 medium comparison
    std::uint64_t max_media_bytes = 256ull << 20; ///< cap on bytes compared per run
    std::size_t max_details = 20;                 ///< per verdict (the count is always given)
};

namespace detail {
struct Run; // the facts, models and replay results of one run (src/run.hpp)
}

/// One invariant: the row of docs/checker.md's table of invariants (a unit test compares the
/// two) and the function that judges it. check() runs the table in order and takes each
/// verdict's number, name and title from it; the runner's TAP names are
/// "icemu-check <name>: <title>".
struct Invariant {
    int number;                      ///< 0 = the logs themselves
    std::string_view name;           ///< short id, e.g. "keys-armed"
    std::string_view title;          ///< one line
    std::string_view kernel;         ///< which kernel's rules the prediction depends on
    std::string_view level;          ///< the levels it can be judged at (docs)
    std::string_view not_applicable; ///< when it does not apply (docs)
    Verdict (*judge)(const detail::Run&);
};
/// The invariant table, in order.
std::span<const Invariant> invariants();

/// Judges the run: one verdict per row of invariants(), in order. Throws std::invalid_argument
/// when a run.json step names an op outside the guest-op vocabulary (icemu/guest_ops.hpp).
std::vector<Verdict> check(const Inputs& in, const Options& opt = {});

bool any_failed(const std::vector<Verdict>& v);
std::string format_text(const std::vector<Verdict>& v);
json to_json(const std::vector<Verdict>& v);

} // namespace icemu::checker
