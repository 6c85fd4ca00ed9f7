// What the device saw, from its event logs alone: the summary ./icemu shell prints after a
// session (no scenario, no guest step reports). Each log is replayed through the register
// model (ufshci::LogReplay); the verdicts are "replay" (every event agrees with the model) and,
// when the caller knows no filesystem on an emulated disk is still mounted, "keys-evicted"
// (no slot still holds a key at the end of the log).
#pragma once
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace icemu::checker {

struct DeviceSummaryOptions {
    bool expect_evicted = false; ///< nothing is mounted any more: every slot must be empty
};

/// logs: (controller id, path). Prints a table and the verdicts to `out`; returns the verdicts
/// as JSON ({"verdicts":[{"name","status","reason"}...],"controllers":{...}}). Throws
/// std::runtime_error for an unreadable or malformed log.
nlohmann::json device_summary(const std::vector<std::pair<std::string, std::string>>& logs,
                              const DeviceSummaryOptions& opt, std::ostream& out);

} // namespace icemu::checker
