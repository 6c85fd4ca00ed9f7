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

namespace icemu::runner {

using nlohmann::json;

struct ScenarioError : std::runtime_error {
	using std::runtime_error::runtime_error;
};

struct Lu {
	std::string name;  // scenario-wide disk name, e.g. "ua"
	unsigned lun = 0;
	std::uint64_t size = 0;  // bytes
};

struct Controller {
	std::string id;  // qdev id, e.g. "ufs0"
	bool crypto = true;
	std::optional<unsigned> keyslots;
	std::string caps;  // crypto-caps, empty = device default
	bool mcq = false;
	std::optional<unsigned> mcq_maxq;
	bool log_keys = false;
	std::vector<Lu> lus;
};

struct VirtioDisk {
	std::string name;
	std::uint64_t size = 0;
};

struct Step {
	std::string op;
	std::string label;  // optional; steps are also addressed by 1-based index
	json args = json::object();  // everything that is sent to the guest besides id/op
	json expect = json::object();  // {"ok":bool,"errno":"EINVAL","kmsg":"...","reply":{ptr:value}}
	json save = json::object();    // {"var": "/json/pointer/or/field"} from the reply
	double timeout_s = 60;
	bool host_only() const { return op == "inject"; }
};

struct Expectation {
	std::string name;  // test point description
	std::string kind;
	json spec;
	std::optional<std::string> xfail;  // reason; the check is expected to fail
};

struct Scenario {
	std::string name;
	std::string title;
	std::string description;
	bool in_default = true;
	std::string memory = "512M";
	unsigned smp = 1;
	std::string append;  // extra kernel command line
	double timeout_s = 300;
	std::vector<Controller> controllers;
	std::vector<VirtioDisk> virtio_disks;
	std::map<std::string, json> vars;
	std::vector<Step> steps;
	std::vector<Expectation> expectations;
	json raw;  // the file as read
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

std::uint64_t parse_size(const json& v);  // 4096, "64M", "1G", "512K"
Scenario parse_scenario(const json& j);   // throws ScenarioError
Scenario load_scenario(const std::string& path);

// Index of a step reference: "boot" -> 0, "end" -> steps.size(), a label or a 1-based
// number -> that step's index (1-based). Throws ScenarioError if unknown.
std::size_t step_ref(const Scenario& s, const json& ref);

// Replaces ${name} / ${name.attr} in every string of v. A string that is exactly one
// reference to a number becomes that number. Unknown names throw ScenarioError.
using Lookup = std::map<std::string, json>;
json substitute(const json& v, const Lookup& vars);

}  // namespace icemu::runner
