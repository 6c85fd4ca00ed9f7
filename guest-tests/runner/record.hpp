// What one scenario run produced, and the checks the runner makes on it. Everything here is
// pure (no QEMU), so the checks are unit-tested on hand-written records.
// The same record is written to the artifacts as run.json for icemu-check.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "report.hpp"
#include "scenario.hpp"

namespace icemu::runner {

struct StepRecord {
    std::size_t index = 0; // 1-based
    std::string op;
    std::string label;
    json request; // as sent (after substitution); host ops: the QMP command
    json reply;   // the guest's reply; null if none arrived
    json expect;  // the step's expectations after substitution (null: the scenario's)
    double seconds = 0;
    std::string error;   // runner-side failure (timeout, substitution, QMP error)
    std::string skipped; // non-empty: not run on this guest kernel (the step's "kernel" condition)
};

struct Event {
    std::uint64_t offset = 0; // byte offset of the line in the controller's log
    // The event as the models' parser (icemu::models::events) decoded it, written back as JSON
    // with the schema's field names (events::to_json_line); {"ev": "invalid"} when the parser
    // rejected the line, with the reason in `error`.
    json e;
    std::string error;
};

struct RunRecord {
    json hello;                           // the guest's hello (with the boot kmsg)
    json boot_disks;                      // the implicit "disks" reply after hello
    std::map<std::string, json> disk_map; // scenario disk name -> its entry of boot_disks
    double boot_seconds = 0;              // QEMU start -> hello
    std::vector<StepRecord> steps;
    // snapshots[i]: after step i (0 = after boot); controller id -> crypto-state (null if absent)
    std::vector<std::map<std::string, json>> snapshots;
    // event_marks[i]: controller id -> log size in bytes after step i
    std::vector<std::map<std::string, std::uint64_t>> event_marks;
    std::map<std::string, std::vector<Event>> events; // controller id -> parsed log
    bool engine = true;                               // the QEMU binary has the crypto properties
    bool with_fixes = false; // the kernel carries guest-tests/kernel/fixes (icemu-run --with-fixes)
    json to_json() const;
};

// Parses a JSON-lines event log through icemu::models::events (docs/event-log.md), line by line
// (ignores a torn last line). A line the parser rejects is kept as an "invalid" Event.
std::vector<Event> parse_event_log(const std::string& text);

// Matches the guest's disks to scenario disks by PCI address and LUN.
std::map<std::string, json> map_disks(const Scenario& s, const json& disks_reply);

// "" when every disk of a crypto=on controller shows queue/crypto in the guest; else one line
// naming the first disk without it and the likely cause (kernel options, the host driver's
// patch or PCI identity), so a run stops there instead of failing dozens of checks.
std::string crypto_preflight(const Scenario& s, const std::map<std::string, json>& disk_map,
                             bool crypto_on);

// ${...} variables available to steps: disks (${ua} = /dev/sdb, ${ua.sys}, ${ua.sectors},
// ${ua.bytes}), scenario vars, and values saved from earlier replies.
// ${disk}, ${disk.sys}, ${disk.bytes}, ${disk.sectors} for each entry of a disk map.
void bind_disks(Lookup& l, const json& disk_map);
Lookup base_lookup(const Scenario& s, const RunRecord& r);

TestPoint check_step(const Scenario& s, const StepRecord& st);
TestPoint check_expectation(const Scenario& s, const Expectation& x, const RunRecord& r);

// The guest kernel's release from the hello ("" before boot).
std::string guest_release(const RunRecord& r);
// "" when `cond` holds for the guest kernel, else the SKIP reason ("needs kernel >=7, guest
// runs 6.12.117").
std::string kernel_skip_reason(const std::string& cond, const RunRecord& r);

// The crypto capabilities (queue/crypto facts) that a dm device over `children` must show:
// min max_dun_bits, AND of each mode's data-unit mask, raw_keys if all have it; null if no
// mode survives (dm then registers no profile).
json intersect_crypto(const std::vector<json>& children);

} // namespace icemu::runner
