#include "scenario.hpp"

#include "icemu/models/event_schema.hpp"

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

const std::set<std::string> kGuestOps = {
    "sysinfo",     "disks",      "mkfs",       "mount",      "umount",      "sync",
    "drop_caches", "kmsg",       "dm_create",  "dm_load",    "dm_resume",   "dm_suspend",
    "dm_remove",   "dm_table",   "dm_clear",   "add_key",    "remove_key",  "key_status",
    "set_policy",  "get_policy", "write_file", "read_file",  "file_info",   "remove_file",
    "poweroff",    "write_dev",  "read_dev",   "dm_message", "write_files", "read_files",
    "bench_io"};
const std::set<std::string> kHostOps = {"inject"};
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

} // namespace

Scenario parse_scenario(const json& j) {
    if (!j.is_object())
        throw ScenarioError("a scenario is a JSON object");
    Scenario s;
    s.raw = j;
    try {
        s.name = j.at("name").get<std::string>();
        if (!std::regex_match(s.name, std::regex("^[A-Za-z0-9][A-Za-z0-9_.-]*$")))
            throw ScenarioError("scenario name '" + s.name +
                                "' must match [A-Za-z0-9][A-Za-z0-9_.-]*");
        s.title = get_or<std::string>(j, "title", s.name);
        s.description = get_or<std::string>(j, "description", "");
        s.in_default = get_or<bool>(j, "default", true);
        s.timeout_s = get_or<double>(j, "timeout_s", 300);
        if (auto m = j.find("machine"); m != j.end()) {
            s.memory = get_or<std::string>(*m, "memory", s.memory);
            s.smp = get_or<unsigned>(*m, "smp", 1);
            s.append = get_or<std::string>(*m, "append", "");
        }
        std::set<std::string> disk_names, ctrl_ids;
        for (const auto& c : member(j, "controllers", true)) {
            Controller ctl;
            ctl.id = c.at("id").get<std::string>();
            check_name("controller", ctl.id);
            if (!ctrl_ids.insert(ctl.id).second)
                throw ScenarioError("duplicate controller id " + ctl.id);
            ctl.type = get_or<std::string>(c, "type", "ufs");
            if (ctl.type != "ufs" && ctl.type != "emmc")
                throw ScenarioError("controller " + ctl.id + ": type must be \"ufs\" or \"emmc\"");
            ctl.crypto = get_or<bool>(c, "crypto", true);
            if (c.contains("keyslots"))
                ctl.keyslots = c["keyslots"].get<unsigned>();
            ctl.caps = get_or<std::string>(c, "caps", "");
            if (ctl.caps.find(',') != std::string::npos)
                throw ScenarioError("controller " + ctl.id + ": caps are '/'-separated, not ','");
            ctl.mcq = get_or<bool>(c, "mcq", false);
            if (c.contains("mcq_maxq"))
                ctl.mcq_maxq = c["mcq_maxq"].get<unsigned>();
            ctl.log_keys = get_or<bool>(c, "log_keys", false);
            if (ctl.is_emmc()) {
                if (ctl.mcq || c.contains("mcq_maxq") || c.contains("lus"))
                    throw ScenarioError(
                        "controller " + ctl.id +
                        ": an emmc controller has no mcq and no lus (give \"name\" and \"size\")");
                Lu lu;
                lu.name = c.at("name").get<std::string>();
                check_name("disk", lu.name);
                if (!disk_names.insert(lu.name).second)
                    throw ScenarioError("duplicate disk name " + lu.name);
                lu.size = parse_size(c.at("size"));
                // QEMU's SD/eMMC card model refuses other sizes ("Invalid SD card size")
                if (lu.size == 0 || (lu.size & (lu.size - 1)) != 0)
                    throw ScenarioError("controller " + ctl.id +
                                        ": an emmc size must be a power of 2 (e.g. \"64M\")");
                ctl.lus.push_back(lu);
            }
            for (const auto& l : member(c, "lus", true)) {
                Lu lu;
                lu.name = l.at("name").get<std::string>();
                check_name("LU", lu.name);
                if (!disk_names.insert(lu.name).second)
                    throw ScenarioError("duplicate disk name " + lu.name);
                lu.lun = get_or<unsigned>(l, "lun", static_cast<unsigned>(ctl.lus.size()));
                lu.size = parse_size(l.at("size"));
                ctl.lus.push_back(lu);
            }
            if (ctl.lus.empty())
                throw ScenarioError("controller " + ctl.id + " has no LUs");
            s.controllers.push_back(ctl);
        }
        for (const auto& d : member(j, "virtio_disks", true)) {
            VirtioDisk vd;
            vd.name = d.at("name").get<std::string>();
            check_name("disk", vd.name);
            if (!disk_names.insert(vd.name).second)
                throw ScenarioError("duplicate disk name " + vd.name);
            vd.size = parse_size(d.at("size"));
            s.virtio_disks.push_back(vd);
        }
        for (const auto& [k, v] : member(j, "vars", false).items())
            s.vars[k] = v;
        std::set<std::string> labels;
        for (const auto& st : j.at("steps")) {
            Step step;
            step.op = st.at("op").get<std::string>();
            if (!kGuestOps.count(step.op) && !kHostOps.count(step.op))
                throw ScenarioError("unknown op '" + step.op + "'");
            step.label = get_or<std::string>(st, "label", "");
            if (!step.label.empty()) {
                if (step.label == "boot" || step.label == "end" ||
                    !labels.insert(step.label).second)
                    throw ScenarioError("step label '" + step.label + "' is reserved or duplicate");
            }
            step.expect = member(st, "expect", false);
            step.save = member(st, "save", false);
            step.timeout_s = get_or<double>(st, "timeout_s", 60);
            step.kernel = get_or<std::string>(st, "kernel", "");
            validate_kernel_condition(step.kernel);
            for (const auto& [k, v] : st.items())
                if (!kStepMeta.count(k))
                    step.args[k] = v;
            s.steps.push_back(step);
        }
        if (s.steps.empty())
            throw ScenarioError("no steps");
        s.kernel = get_or<std::string>(j, "kernel", "");
        validate_kernel_condition(s.kernel);
        for (const auto& [k, v] : member(j, "checker_xfail", false).items())
            s.checker_xfail[k] = v.get<std::string>();
        for (const auto& e : member(j, "expect", true)) {
            Expectation x;
            x.kind = e.at("kind").get<std::string>();
            if (!kKinds.count(x.kind))
                throw ScenarioError("unknown expectation kind '" + x.kind + "'");
            x.name = get_or<std::string>(e, "name", x.kind);
            if (e.contains("xfail"))
                x.xfail = e["xfail"].get<std::string>();
            x.kernel = get_or<std::string>(e, "kernel", "");
            validate_kernel_condition(x.kernel);
            if (x.kind == "events")
                check_event_match(e);
            x.spec = e;
            s.expectations.push_back(x);
        }
        // every step reference in expectations must resolve now, not after a 30 s boot
        for (const auto& x : s.expectations)
            for (const char* k : {"at", "from", "to", "upto", "step"})
                if (x.spec.contains(k))
                    (void)step_ref(s, x.spec[k]);
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

namespace {

// "7.3.4-foo" -> {7, 3, 4}; stops at the first component that does not start with a digit.
std::vector<unsigned long> version_parts(const std::string& v) {
    std::vector<unsigned long> out;
    std::size_t i = 0;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
        std::size_t end = i;
        while (end < v.size() && std::isdigit(static_cast<unsigned char>(v[end])))
            ++end;
        out.push_back(std::stoul(v.substr(i, end - i)));
        if (end >= v.size() || v[end] != '.')
            break;
        i = end + 1;
    }
    return out;
}

const std::regex& kernel_cond_re() {
    static const std::regex re("^\\s*(>=|<=|==|>|<)\\s*([0-9]+(\\.[0-9]+)*)\\s*$");
    return re;
}

} // namespace

void validate_kernel_condition(const std::string& cond) {
    if (!cond.empty() && !std::regex_match(cond, kernel_cond_re()))
        throw ScenarioError("bad kernel condition '" + cond + "' (want e.g. \">=7\" or \"<6.13\")");
}

bool kernel_matches(const std::string& cond, const std::string& release) {
    if (cond.empty())
        return true;
    std::smatch m;
    if (!std::regex_match(cond, m, kernel_cond_re()))
        throw ScenarioError("bad kernel condition '" + cond + "'");
    std::vector<unsigned long> want = version_parts(m[2].str()), got = version_parts(release);
    if (got.empty())
        throw ScenarioError("cannot read a version from the guest's release '" + release + "'");
    got.resize(want.size(), 0);
    const std::string op = m[1].str();
    if (op == ">=")
        return got >= want;
    if (op == ">")
        return got > want;
    if (op == "<=")
        return got <= want;
    if (op == "<")
        return got < want;
    return got == want;
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
