#include "scenario.hpp"

#include "icemu/models/event_schema.hpp"
#include "icemu/models/kernel_rules.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <set>

namespace icemu::runner {

std::uint64_t parse_size(const json& v) {
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
        return v.get<std::uint64_t>();
    if (!v.is_string())
        throw ScenarioError("size must be a number or a string like \"64M\"");
    std::string s = v.get<std::string>();
    static const std::regex re("^([0-9]+)([KMGkmg]?)$");
    std::smatch m;
    if (!std::regex_match(s, m, re))
        throw ScenarioError("bad size '" + s + "'");
    std::uint64_t n = std::stoull(m[1].str());
    switch (m[2].str().empty() ? ' ' : static_cast<char>(std::toupper(m[2].str()[0]))) {
    case 'K':
        return n << 10;
    case 'M':
        return n << 20;
    case 'G':
        return n << 30;
    default:
        return n;
    }
}

namespace {

const std::set<std::string> kKinds = {"kmsg",       "disk_crypto",  "counter", "events",
                                      "key_on_all", "keys_evicted", "reply"};
const std::set<std::string> kStepMeta = {"op",        "label", "expect", "save",
                                         "timeout_s", "note",  "kernel"};

template <class T>
T get_or(const json& j, const char* key, T dflt) {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? dflt : it->get<T>();
}

// An "events" expectation's match names fields and values of the event log schema
// (docs/event-log.md): a misspelt field or value would silently match nothing.
void check_event_match(const json& spec) {
    namespace sc = icemu::models::events::schema;
    if (!spec.contains("match"))
        return;
    const json& match = spec["match"];
    if (!match.is_object())
        throw ScenarioError("events: match must be an object");
    const std::string ev = match.contains("ev") && match["ev"].is_string() ? match["ev"] : "";
    for (const auto& [k, v] : match.items()) {
        const sc::Field* f = nullptr;
        for (const auto& x : sc::kFields)
            if (x.name == k && (x.event.empty() || ev.empty() || x.event == ev)) {
                f = &x;
                break;
            }
        if (!f)
            throw ScenarioError("events: match field '" + k + "' is not a field of " +
                                (ev.empty() ? "any event" : "'" + ev + "' events") +
                                " (docs/event-log.md)");
        const auto values = sc::values_of(f->type);
        if (!values.empty() && (!v.is_string() || sc::index_of(values, v.get<std::string>()) < 0))
            throw ScenarioError("events: match " + k + " = " + v.dump() +
                                " is not a value the event log can have (docs/event-log.md)");
    }
}

void check_name(const std::string& what, const std::string& n) {
    static const std::regex re("^[A-Za-z][A-Za-z0-9_-]*$");
    if (!std::regex_match(n, re))
        throw ScenarioError(what + " name '" + n + "' must match [A-Za-z][A-Za-z0-9_-]*");
}

// ---- Strict format: every key is known, every check can fail ----

using Keys = std::set<std::string>;

// `o` must be an object whose keys are all in `allowed`; `where` names it in the error.
void check_keys(const json& o, const std::string& where, const Keys& allowed) {
    if (!o.is_object())
        throw ScenarioError(where + ": must be a JSON object");
    for (const auto& [k, v] : o.items())
        if (!allowed.count(k)) {
            std::string known;
            for (const auto& a : allowed)
                known += (known.empty() ? "" : ", ") + a;
            throw ScenarioError(where + ": unknown key \"" + k + "\" (known: " + known + ")");
        }
}

// Typed access that names the field when the JSON type is wrong.
template <class T>
T field(const json& o, const char* key, const std::string& where, T dflt) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null())
        return dflt;
    try {
        return it->get<T>();
    } catch (const json::exception&) {
        throw ScenarioError(where + ": \"" + key + "\" has the wrong type (" + it->dump() + ")");
    }
}

template <class T>
T required(const json& o, const char* key, const std::string& where) {
    if (!o.contains(key) || o[key].is_null())
        throw ScenarioError(where + ": \"" + key + "\" is missing");
    return field<T>(o, key, where, T{});
}

const Keys kTopKeys = {"name",    "title",       "description",  "default", "timeout_s",
                       "machine", "controllers", "virtio_disks", "vars",    "steps",
                       "expect",  "kernel",      "checker_xfail"};
const Keys kMachineKeys = {"memory", "smp", "append"};
const Keys kUfsKeys = {"id",   "type",         "crypto",   "keyslots",
                       "caps", "mcq",          "mcq_maxq", "log_keys",
                       "lus",  "wrapped_keys", "raw_keys", "wrapping_key"};
const Keys kEmmcKeys = {"id",   "type", "crypto",       "keyslots", "caps",        "log_keys",
                        "name", "size", "wrapped_keys", "raw_keys", "wrapping_key"};
const Keys kLuKeys = {"name", "lun", "size"};
const Keys kVirtioKeys = {"name", "size"};
const Keys kStepExpectKeys = {"ok", "errno", "kmsg", "reply"};
const Keys kInjectArgs = {"ctrl", "property", "value"};
const Keys kRebootArgs = {};

// What each expectation kind reads (besides kind, name, xfail, xfail_when, kernel), which of those
// it needs, and whether it compares a number (eq/min/max) or names controllers (ctrl/ctrls).
struct KindFormat {
    Keys keys;
    Keys needs;
    bool comparator = false;
    bool controllers = false;
};

const std::map<std::string, KindFormat>& kind_formats() {
    static const std::map<std::string, KindFormat> f = {
        {"kmsg", {{"contains", "absent", "from", "upto"}, {"contains"}}},
        {"disk_crypto",
         {{"disk", "at", "none", "equals", "intersection_of", "require_crypto", "lacks"},
          {"disk"}}},
        {"counter",
         {{"ctrl", "ctrls", "counter", "from", "to", "min", "max", "eq", "absolute"},
          {"counter"},
          true,
          true}},
        {"events",
         {{"ctrl", "ctrls", "match", "from", "to", "min", "max", "eq"}, {"match"}, true, true}},
        {"key_on_all", {{"ctrl", "ctrls", "from", "to"}, {}, false, true}},
        {"keys_evicted", {{"ctrl", "ctrls", "from", "to", "at"}, {}, false, true}},
        {"reply", {{"step", "pointer", "equals", "contains"}, {"pointer"}}},
    };
    return f;
}

void check_expectation_format(const json& e, const std::string& where, const std::string& kind,
                              const std::set<std::string>& ctrl_ids) {
    const KindFormat& f = kind_formats().at(kind);
    Keys keys = f.keys;
    keys.insert({"kind", "name", "xfail", "xfail_when", "kernel"});
    check_keys(e, where, keys);
    for (const auto& k : f.needs)
        if (!e.contains(k))
            throw ScenarioError(where + ": \"" + k + "\" is missing");
    if (f.comparator) {
        bool any = false;
        for (const char* k : {"eq", "min", "max"})
            if (e.contains(k)) {
                if (!e[k].is_number())
                    throw ScenarioError(where + ": \"" + k + "\" must be a number");
                any = true;
            }
        if (!any)
            throw ScenarioError(where + ": needs at least one of \"eq\", \"min\", \"max\"");
        if (e.contains("min") && e.contains("max") &&
            e["min"].get<double>() > e["max"].get<double>())
            throw ScenarioError(where + ": \"min\" is greater than \"max\"");
    }
    if (f.controllers) {
        std::vector<std::string> named;
        if (e.contains("ctrl"))
            named.push_back(required<std::string>(e, "ctrl", where));
        if (e.contains("ctrls")) {
            const json& c = e["ctrls"];
            if (!c.is_array() || c.empty())
                throw ScenarioError(where + ": \"ctrls\" must be a non-empty array of ids");
            for (const auto& x : c) {
                if (!x.is_string())
                    throw ScenarioError(where + ": \"ctrls\" must be a non-empty array of ids");
                named.push_back(x.get<std::string>());
            }
        }
        if (named.empty())
            throw ScenarioError(where + ": needs \"ctrl\" or \"ctrls\"");
        for (const auto& c : named)
            if (!ctrl_ids.count(c))
                throw ScenarioError(where + ": unknown controller \"" + c + "\"");
    }
    if (kind == "disk_crypto") {
        int n = e.contains("none") + e.contains("equals") + e.contains("intersection_of");
        if (n != 1)
            throw ScenarioError(where +
                                ": needs exactly one of \"none\", \"equals\", \"intersection_of\"");
        if (e.contains("none") && !field<bool>(e, "none", where, false))
            throw ScenarioError(where + ": \"none\" can only be true");
        if (e.contains("lacks")) {
            const json& l = e["lacks"];
            if (e.contains("none") || !l.is_array() || l.empty() ||
                !std::all_of(l.begin(), l.end(), [](const json& x) { return x.is_string(); }))
                throw ScenarioError(where + ": \"lacks\" is a non-empty array of queue/crypto "
                                            "file names, with \"equals\" or \"intersection_of\"");
        }
    }
    if (kind == "reply" && e.contains("equals") && e.contains("contains"))
        throw ScenarioError(where + ": \"equals\" and \"contains\" exclude each other");
    if (kind == "events" && !e["match"].is_object())
        throw ScenarioError(where + ": \"match\" must be an object");
    if (kind == "counter")
        (void)required<std::string>(e, "counter", where);
    if (kind == "kmsg")
        (void)required<std::string>(e, "contains", where);
}

} // namespace

Scenario parse_scenario(const json& j) {
    if (!j.is_object())
        throw ScenarioError("a scenario is a JSON object");
    Scenario s;
    s.raw = j;
    try {
        check_keys(j, "scenario", kTopKeys);
        s.name = required<std::string>(j, "name", "scenario");
        if (!std::regex_match(s.name, std::regex("^[A-Za-z0-9][A-Za-z0-9_.-]*$")))
            throw ScenarioError("scenario name '" + s.name +
                                "' must match [A-Za-z0-9][A-Za-z0-9_.-]*");
        s.title = field<std::string>(j, "title", "scenario", s.name);
        s.description = field<std::string>(j, "description", "scenario", "");
        s.in_default = field<bool>(j, "default", "scenario", true);
        s.timeout_s = field<double>(j, "timeout_s", "scenario", 300);
        if (auto m = j.find("machine"); m != j.end()) {
            check_keys(*m, "machine", kMachineKeys);
            s.memory = field<std::string>(*m, "memory", "machine", s.memory);
            s.smp = field<unsigned>(*m, "smp", "machine", 1);
            s.append = field<std::string>(*m, "append", "machine", "");
        }
        std::set<std::string> disk_names, ctrl_ids;
        std::size_t ci = 0;
        for (const auto& c : member(j, "controllers", true)) {
            std::string where = "controllers[" + std::to_string(ci++) + "]";
            if (!c.is_object())
                throw ScenarioError(where + ": must be a JSON object");
            Controller ctl;
            ctl.id = required<std::string>(c, "id", where);
            where += " (" + ctl.id + ")";
            check_name("controller", ctl.id);
            if (!ctrl_ids.insert(ctl.id).second)
                throw ScenarioError("duplicate controller id " + ctl.id);
            ctl.type = field<std::string>(c, "type", where, "ufs");
            if (ctl.type != "ufs" && ctl.type != "emmc")
                throw ScenarioError("controller " + ctl.id + ": type must be \"ufs\" or \"emmc\"");
            if (ctl.is_emmc() && (c.contains("mcq") || c.contains("mcq_maxq") || c.contains("lus")))
                throw ScenarioError(
                    "controller " + ctl.id +
                    ": an emmc controller has no mcq and no lus (give \"name\" and \"size\")");
            check_keys(c, where, ctl.is_emmc() ? kEmmcKeys : kUfsKeys);
            ctl.crypto = field<bool>(c, "crypto", where, true);
            if (c.contains("keyslots"))
                ctl.keyslots = field<unsigned>(c, "keyslots", where, 0);
            ctl.caps = field<std::string>(c, "caps", where, "");
            if (ctl.caps.find(',') != std::string::npos)
                throw ScenarioError("controller " + ctl.id + ": caps are '/'-separated, not ','");
            ctl.mcq = field<bool>(c, "mcq", where, false);
            if (c.contains("mcq_maxq"))
                ctl.mcq_maxq = field<unsigned>(c, "mcq_maxq", where, 0);
            ctl.log_keys = field<bool>(c, "log_keys", where, false);
            ctl.wrapped_keys = field<bool>(c, "wrapped_keys", where, false);
            ctl.raw_keys = field<bool>(c, "raw_keys", where, true);
            ctl.wrapping_key = field<std::string>(c, "wrapping_key", where, "");
            if (!ctl.wrapped_keys && (!ctl.raw_keys || !ctl.wrapping_key.empty()))
                throw ScenarioError("controller " + ctl.id +
                                    ": raw_keys and wrapping_key need \"wrapped_keys\": true");
            if (!ctl.wrapping_key.empty() &&
                !std::regex_match(ctl.wrapping_key, std::regex("^[0-9a-fA-F]{64}$")))
                throw ScenarioError("controller " + ctl.id +
                                    ": wrapping_key must be 64 hex digits (32 bytes)");
            if (ctl.is_emmc()) {
                Lu lu;
                lu.name = required<std::string>(c, "name", where);
                check_name("disk", lu.name);
                if (!disk_names.insert(lu.name).second)
                    throw ScenarioError("duplicate disk name " + lu.name);
                if (!c.contains("size"))
                    throw ScenarioError(where + ": \"size\" is missing");
                lu.size = parse_size(c["size"]);
                // QEMU's SD/eMMC card model refuses other sizes ("Invalid SD card size")
                if (lu.size == 0 || (lu.size & (lu.size - 1)) != 0)
                    throw ScenarioError("controller " + ctl.id +
                                        ": an emmc size must be a power of 2 (e.g. \"64M\")");
                ctl.lus.push_back(lu);
            }
            std::size_t li = 0;
            for (const auto& l : member(c, "lus", true)) {
                const std::string lw = where + " lus[" + std::to_string(li++) + "]";
                check_keys(l, lw, kLuKeys);
                Lu lu;
                lu.name = required<std::string>(l, "name", lw);
                check_name("LU", lu.name);
                if (!disk_names.insert(lu.name).second)
                    throw ScenarioError("duplicate disk name " + lu.name);
                lu.lun = field<unsigned>(l, "lun", lw, static_cast<unsigned>(ctl.lus.size()));
                if (!l.contains("size"))
                    throw ScenarioError(lw + ": \"size\" is missing");
                lu.size = parse_size(l["size"]);
                ctl.lus.push_back(lu);
            }
            if (ctl.lus.empty())
                throw ScenarioError("controller " + ctl.id + " has no LUs");
            s.controllers.push_back(ctl);
        }
        std::size_t vi = 0;
        for (const auto& d : member(j, "virtio_disks", true)) {
            const std::string where = "virtio_disks[" + std::to_string(vi++) + "]";
            check_keys(d, where, kVirtioKeys);
            VirtioDisk vd;
            vd.name = required<std::string>(d, "name", where);
            check_name("disk", vd.name);
            if (!disk_names.insert(vd.name).second)
                throw ScenarioError("duplicate disk name " + vd.name);
            if (!d.contains("size"))
                throw ScenarioError(where + ": \"size\" is missing");
            vd.size = parse_size(d["size"]);
            s.virtio_disks.push_back(vd);
        }
        for (const auto& [k, v] : member(j, "vars", false).items())
            s.vars[k] = v;
        std::set<std::string> labels;
        if (!j.contains("steps") || !j["steps"].is_array())
            throw ScenarioError("scenario: \"steps\" must be an array");
        std::size_t si = 0;
        for (const auto& st : j["steps"]) {
            std::string where = "steps[" + std::to_string(si++) + "]";
            if (!st.is_object())
                throw ScenarioError(where + ": must be a JSON object");
            Step step;
            step.op = required<std::string>(st, "op", where);
            where += " (" + step.op + ")";
            if (!guest_ops::parse(step.op) && !guest_ops::is_host_op(step.op))
                throw ScenarioError("unknown op '" + step.op + "'");
            step.label = field<std::string>(st, "label", where, "");
            if (!step.label.empty()) {
                if (step.label == "boot" || step.label == "end" ||
                    !labels.insert(step.label).second)
                    throw ScenarioError("step label '" + step.label + "' is reserved or duplicate");
            }
            step.expect = member(st, "expect", false);
            check_keys(step.expect, where + " expect", kStepExpectKeys);
            step.save = member(st, "save", false);
            if (!step.save.is_object())
                throw ScenarioError(where + " save: must be a JSON object");
            for (const auto& [k, v] : step.save.items())
                if (!v.is_string())
                    throw ScenarioError(where + " save: \"" + k +
                                        "\" must name a reply field or JSON pointer");
            step.timeout_s = field<double>(st, "timeout_s", where, 60);
            step.kernel = field<std::string>(st, "kernel", where, "");
            validate_kernel_condition(step.kernel);
            for (const auto& [k, v] : st.items())
                if (!kStepMeta.count(k))
                    step.args[k] = v;
            if (step.op == "reboot") {
                check_keys(step.args, where, kRebootArgs);
            } else if (step.host_only()) {
                check_keys(step.args, where, [] {
                    Keys k = kInjectArgs;
                    k.insert(kStepMeta.begin(), kStepMeta.end());
                    return k;
                }());
                for (const char* k : {"ctrl", "property", "value"})
                    if (!step.args.contains(k))
                        throw ScenarioError(where + ": \"" + k + "\" is missing");
                const std::string c = required<std::string>(step.args, "ctrl", where);
                if (!ctrl_ids.count(c))
                    throw ScenarioError(where + ": unknown controller \"" + c + "\"");
            }
            s.steps.push_back(step);
        }
        if (s.steps.empty())
            throw ScenarioError("no steps");
        s.kernel = field<std::string>(j, "kernel", "scenario", "");
        validate_kernel_condition(s.kernel);
        for (const auto& [k, v] : member(j, "checker_xfail", false).items()) {
            // "verdict": "reason", or {"reason": "...", "when": "<kernel condition>"}
            if (v.is_object()) {
                check_keys(v, "checker_xfail." + k, {"reason", "when"});
                s.checker_xfail[k] = required<std::string>(v, "reason", "checker_xfail." + k);
                s.checker_xfail_when[k] = field<std::string>(v, "when", "checker_xfail." + k, "");
                validate_kernel_condition(s.checker_xfail_when[k]);
            } else if (v.is_string()) {
                s.checker_xfail[k] = v.get<std::string>();
            } else {
                throw ScenarioError("checker_xfail: \"" + k +
                                    "\" needs a reason string or {\"reason\", \"when\"}");
            }
        }
        std::size_t ei = 0;
        for (const auto& e : member(j, "expect", true)) {
            std::string where = "expect[" + std::to_string(ei++) + "]";
            if (!e.is_object())
                throw ScenarioError(where + ": must be a JSON object");
            Expectation x;
            x.kind = required<std::string>(e, "kind", where);
            if (!kKinds.count(x.kind))
                throw ScenarioError(where + ": unknown expectation kind '" + x.kind + "'");
            x.name = field<std::string>(e, "name", where, x.kind);
            where += " \"" + x.name + "\"";
            check_expectation_format(e, where, x.kind, ctrl_ids);
            if (e.contains("xfail"))
                x.xfail = required<std::string>(e, "xfail", where);
            x.xfail_when = field<std::string>(e, "xfail_when", where, "");
            if (!x.xfail_when.empty() && !x.xfail)
                throw ScenarioError(where + ": \"xfail_when\" without \"xfail\"");
            validate_kernel_condition(x.xfail_when);
            x.kernel = field<std::string>(e, "kernel", where, "");
            validate_kernel_condition(x.kernel);
            if (x.kind == "events")
                check_event_match(e);
            x.spec = e;
            s.expectations.push_back(x);
        }
        // every step reference in expectations must resolve now, not after a 30 s boot
        for (std::size_t i = 0; i < s.expectations.size(); ++i)
            for (const char* k : {"at", "from", "to", "upto", "step"})
                if (s.expectations[i].spec.contains(k)) {
                    try {
                        (void)step_ref(s, s.expectations[i].spec[k]);
                    } catch (const ScenarioError& e) {
                        throw ScenarioError("expect[" + std::to_string(i) + "] \"" +
                                            s.expectations[i].name + "\": \"" + k +
                                            "\": " + e.what());
                    }
                }
    } catch (const json::exception& e) {
        throw ScenarioError(std::string("scenario ") + (s.name.empty() ? "?" : s.name) + ": " +
                            e.what());
    }
    return s;
}

Scenario load_scenario(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw ScenarioError("cannot open " + path);
    json j;
    try {
        j = json::parse(in, nullptr, true, /*ignore_comments=*/true);
    } catch (const json::exception& e) {
        throw ScenarioError(path + ": " + e.what());
    }
    try {
        return parse_scenario(j);
    } catch (const ScenarioError& e) {
        throw ScenarioError(path + ": " + e.what());
    }
}

std::size_t step_ref(const Scenario& s, const json& ref) {
    if (ref.is_number_integer() && ref.get<std::int64_t>() >= 0) {
        auto n = ref.get<std::size_t>();
        if (n > s.steps.size())
            throw ScenarioError("step " + std::to_string(n) + " does not exist");
        return n;
    }
    if (!ref.is_string())
        throw ScenarioError("a step reference is a label, a 1-based number, \"boot\" or \"end\"");
    std::string r = ref.get<std::string>();
    if (r == "boot")
        return 0;
    if (r == "end")
        return s.steps.size();
    for (std::size_t i = 0; i < s.steps.size(); ++i)
        if (s.steps[i].label == r)
            return i + 1;
    throw ScenarioError("unknown step label '" + r + "'");
}

namespace {} // namespace

void validate_kernel_condition(const std::string& cond) {
    if (cond.empty())
        return;
    try {
        models::kernel::validate_condition(cond);
    } catch (const std::invalid_argument& e) {
        throw ScenarioError(e.what());
    }
}

bool kernel_matches(const std::string& cond, const std::string& release, bool with_fixes) {
    if (cond.empty())
        return true;
    try {
        return models::kernel::rules_for(release, with_fixes).condition(cond);
    } catch (const std::invalid_argument& e) {
        throw ScenarioError(e.what());
    }
}

json substitute(const json& v, const Lookup& vars) {
    if (v.is_object()) {
        json o = json::object();
        for (const auto& [k, x] : v.items())
            o[k] = substitute(x, vars);
        return o;
    }
    if (v.is_array()) {
        json a = json::array();
        for (const auto& x : v)
            a.push_back(substitute(x, vars));
        return a;
    }
    if (!v.is_string())
        return v;
    const std::string& s = v.get_ref<const std::string&>();
    static const std::regex ref_re("\\$\\{([A-Za-z0-9_.:-]+)\\}");
    auto lookup = [&](const std::string& key) -> const json& {
        auto it = vars.find(key);
        if (it == vars.end())
            throw ScenarioError("unknown reference ${" + key + "}");
        return it->second;
    };
    std::smatch m;
    if (std::regex_match(s, m, ref_re)) {
        const json& x = lookup(m[1].str());
        return x;
    }
    std::string out;
    auto begin = s.cbegin();
    while (std::regex_search(begin, s.cend(), m, ref_re)) {
        out.append(begin, m[0].first);
        const json& x = lookup(m[1].str());
        out += x.is_string() ? x.get<std::string>() : x.dump();
        begin = m[0].second;
    }
    out.append(begin, s.cend());
    return out;
}

} // namespace icemu::runner
