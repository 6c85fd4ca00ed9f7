// Scenario files (guest-tests/scenarios/*.json): the machine (UFS controllers with their
// crypto properties and LUs, virtio-blk disks), the steps the guest executes, and the
// expectations the runner checks. Format reference: docs/conformance.md.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "icemu/guest_ops.hpp"

namespace icemu::runner {

using nlohmann::json;

struct ScenarioError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Lu {
    std::string name; // scenario-wide disk name, e.g. "ua"
    unsigned lun = 0;
    std::uint64_t size = 0; // bytes
};

struct Controller {
    std::string id; // qdev id, e.g. "ufs0"
    // "ufs", or "emmc": sdhci-pci with cqhci=on and a soldered eMMC; its one disk is
    // lus[0] (lun 0), given as "name" and "size" on the controller.
    std::string type = "ufs";
    bool is_emmc() const { return type == "emmc"; }
    bool crypto = true;
    std::optional<unsigned> keyslots;
    std::string caps; // crypto-caps, empty = device default
    bool mcq = false;
    std::optional<unsigned> mcq_maxq;
    bool log_keys = false;
    // The hardware key manager (UFS only; docs/device.md "Hardware-wrapped keys"):
    // crypto-wrapped-keys, crypto-raw-keys (false = wrapped-only, as Qualcomm ICE) and the
    // long-term wrapping key as 64 hex digits ("" = QEMU draws one at realize).
    bool wrapped_keys = false;
    bool raw_keys = true;
    std::string wrapping_key;
    std::vector<Lu> lus;
};

struct VirtioDisk {
    std::string name;
    std::uint64_t size = 0;
};

struct Step {
    std::string op;
    std::string label;            // optional; steps are also addressed by 1-based index
    json args = json::object();   // everything that is sent to the guest besides id/op
    json expect = json::object(); // {"ok":bool,"errno":"EINVAL","kmsg":"...","reply":{ptr:value}}
    json save = json::object();   // {"var": "/json/pointer/or/field"} from the reply
    double timeout_s = 60;
    std::string kernel; // "" or a kernel condition: run only on kernels where it holds
    bool host_only() const { return guest_ops::is_host_op(op); }
};

struct Expectation {
    std::string name; // test point description
    std::string kind;
    json spec;
    std::optional<std::string> xfail; // reason; the check is expected to fail
    std::string xfail_when; // "" or a kernel condition: the xfail applies only where it holds
    std::string kernel;     // "" or a kernel condition (else reported as SKIP)
};

struct Scenario {
    std::string name;
    std::string title;
    std::string description;
    bool in_default = true;
    std::string memory = "512M";
    unsigned smp = 1;
    std::string append; // extra kernel command line
    double timeout_s = 300;
    std::vector<Controller> controllers;
    std::vector<VirtioDisk> virtio_disks;
    std::map<std::string, json> vars;
    std::vector<Step> steps;
    std::vector<Expectation> expectations;
    std::string
        kernel; // "" or a condition the guest kernel must meet (else the scenario is SKIPped)
    std::map<std::string, std::string>
        checker_xfail; // icemu-check verdict name -> known-bug reason
    std::map<std::string, std::string>
        checker_xfail_when; // verdict name -> kernel condition of its xfail ("" = always)
    json raw;               // the file as read
};

// j[key] if present, else an empty array/object (a named reference, not a temporary: GCC 12
// warns about nlohmann iterators over temporaries returned by value()).
inline const json& member(const json& j, const char* key, bool array) {
    static const json empty_array = json::array(), empty_object = json::object();
    if (j.is_object()) {
        auto it = j.find(key);
        if (it != j.end() && !it->is_null())
            return *it;
    }
    return array ? empty_array : empty_object;
}

std::uint64_t parse_size(const json& v); // 4096, "64M", "1G", "512K"
Scenario parse_scenario(const json& j);  // throws ScenarioError
Scenario load_scenario(const std::string& path);

// Index of a step reference: "boot" -> 0, "end" -> steps.size(), a label or a 1-based
// number -> that step's index (1-based). Throws ScenarioError if unknown.
std::size_t step_ref(const Scenario& s, const json& ref);

// Kernel conditions ("kernel", "xfail_when"): names of the rule table's rules
// (models/kernel_rules.hpp), each optionally negated with "!", joined by "&&" and "||", e.g.
// "dm-passthrough-striped" or "!mmc-cqe-read-retry-single-block || !bug-mmc-recovery-flag-sticky".
// The guest's hello release ("7.3.4", "6.12.117-icemu") selects the rules; with_fixes turns the
// bug rules that have a fix off. Throws ScenarioError on bad syntax, an unknown rule, or a
// release outside the table's series.
void validate_kernel_condition(const std::string& cond);
bool kernel_matches(const std::string& cond, const std::string& release, bool with_fixes = false);

// Replaces ${name} / ${name.attr} in every string of v. A string that is exactly one
// reference to a number becomes that number. Unknown names throw ScenarioError.
using Lookup = std::map<std::string, json>;
json substitute(const json& v, const Lookup& vars);

} // namespace icemu::runner
