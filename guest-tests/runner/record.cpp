#include "record.hpp"

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "cmdline.hpp"
#include "icemu/models/events.hpp"

namespace icemu::runner {

json RunRecord::to_json() const {
    json steps_j = json::array();
    for (const auto& st : steps) {
        steps_j.push_back({{"index", st.index},
                           {"op", st.op},
                           {"label", st.label},
                           {"request", st.request},
                           {"reply", st.reply},
                           {"expect", st.expect},
                           {"seconds", st.seconds},
                           {"error", st.error}});
        if (!st.skipped.empty())
            steps_j.back()["skipped"] = st.skipped;
    }
    json snaps = json::array();
    for (std::size_t i = 0; i < snapshots.size(); ++i) {
        json s = {{"after_step", i}, {"crypto_state", snapshots[i]}};
        if (i < event_marks.size())
            s["event_log_bytes"] = event_marks[i];
        snaps.push_back(s);
    }
    return {{"hello", hello},       {"boot_disks", boot_disks},
            {"disk_map", disk_map}, {"boot_seconds", boot_seconds},
            {"engine", engine},     {"steps", steps_j},
            {"snapshots", snaps}};
}

std::vector<Event> parse_event_log(const std::string& text) {
    std::vector<Event> out;
    std::size_t pos = 0;
    std::size_t line_no = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos)
            break; // torn last line: not complete yet
        ++line_no;
        const std::string_view line(text.data() + pos, nl - pos);
        if (!line.empty()) {
            try {
                const auto ev = icemu::models::events::parse_event(line, line_no);
                out.push_back({pos, json::parse(icemu::models::events::to_json_line(ev)), ""});
            } catch (const icemu::models::events::LogError& e) {
                out.push_back({pos, {{"ev", "invalid"}}, e.what()});
            }
        }
        pos = nl + 1;
    }
    return out;
}

std::map<std::string, json> map_disks(const Scenario& s, const json& disks_reply) {
    std::map<std::string, json> m;
    const json& disks = disks_reply.contains("disks") ? disks_reply["disks"] : disks_reply;
    auto find = [&](const std::string& pci, long lun) -> json {
        for (const auto& d : disks)
            if (d.value("pci", json()).is_string() && d["pci"] == pci &&
                (lun < 0 || (d.value("lun", json()).is_number() && d["lun"].get<long>() == lun)))
                return d;
        return nullptr;
    };
    // an eMMC's user area is mmcblkN (not its mmcblkNbootM / rpmb partitions)
    auto find_emmc = [&](const std::string& pci) -> json {
        static const std::regex user_area("^mmcblk[0-9]+$");
        for (const auto& d : disks)
            if (d.value("pci", json()).is_string() && d["pci"] == pci &&
                std::regex_match(d.value("name", std::string()), user_area))
                return d;
        return nullptr;
    };
    for (std::size_t i = 0; i < s.controllers.size(); ++i)
        for (const auto& lu : s.controllers[i].lus)
            m[lu.name] = s.controllers[i].is_emmc()
                             ? find_emmc(ufs_pci_addr(i))
                             : find(ufs_pci_addr(i), static_cast<long>(lu.lun));
    for (std::size_t j = 0; j < s.virtio_disks.size(); ++j)
        m[s.virtio_disks[j].name] = find(virtio_blk_pci_addr(j), -1);
    return m;
}

std::string crypto_preflight(const Scenario& s, const std::map<std::string, json>& disk_map,
                             bool crypto_on) {
    if (!crypto_on)
        return "";
    for (const auto& c : s.controllers) {
        if (!c.crypto)
            continue;
        for (const auto& lu : c.lus) {
            auto it = disk_map.find(lu.name);
            if (it == disk_map.end() || !it->second.is_object() ||
                !it->second.value("crypto", json()).is_null())
                continue;
            std::string dev = it->second.value("name", lu.name);
            std::string cause =
                c.is_emmc()
                    ? "the kernel lacks CONFIG_MMC_CRYPTO (with CONFIG_BLK_INLINE_ENCRYPTION and "
                      "CONFIG_MMC_CQHCI), or its sdhci-pci does not set MMC_CAP2_CRYPTO for "
                      "QEMU's sdhci-pci (apply guest-tests/kernel/patches/0002; no mainline "
                      "sdhci-pci identity enables eMMC crypto)"
                    : "the kernel lacks CONFIG_SCSI_UFS_CRYPTO (with "
                      "CONFIG_BLK_INLINE_ENCRYPTION), "
                      "or its ufshcd-pci does not enable crypto for QEMU's UFS 1b36:0013 (apply "
                      "guest-tests/kernel/patches/0001, or boot with --stock-kernel / "
                      "pci-identity=intel-mtl, which mainline ufshcd-pci drives with crypto)";
            return c.id + " has crypto=on but its disk " + dev + " (" + lu.name +
                   ") has no queue/crypto in the guest: " + cause;
        }
    }
    return "";
}

void bind_disks(Lookup& l, const json& disk_map) {
    for (const auto& [name, d] : disk_map.items()) {
        if (d.is_null())
            continue;
        l[name] = d.value("dev_path", "");
        l[name + ".sys"] = d.value("name", "");
        std::uint64_t bytes = d.value("size_bytes", std::uint64_t{0});
        l[name + ".bytes"] = bytes;
        l[name + ".sectors"] = bytes / 512;
    }
}

Lookup base_lookup(const Scenario& s, const RunRecord& r) {
    Lookup l;
    for (const auto& [k, v] : s.vars)
        l[k] = v;
    bind_disks(l, json(r.disk_map));
    return l;
}

namespace {

std::string kmsg_tail(const json& reply, std::size_t n) {
    if (!reply.is_object() || !reply.contains("kmsg"))
        return "";
    const json& k = reply["kmsg"];
    std::string out;
    std::size_t start = k.size() > n ? k.size() - n : 0;
    for (std::size_t i = start; i < k.size(); ++i)
        out += "kmsg: " + k[i].get<std::string>() + "\n";
    return out;
}

bool kmsg_contains(const json& reply, const std::string& needle) {
    if (!reply.is_object() || !reply.contains("kmsg"))
        return false;
    for (const auto& l : reply["kmsg"])
        if (l.get<std::string>().find(needle) != std::string::npos)
            return true;
    return false;
}

const json* pointer(const json& j, const std::string& ptr) {
    try {
        json::json_pointer p(ptr.empty() || ptr[0] == '/' ? ptr : "/" + ptr);
        if (!j.contains(p))
            return nullptr;
        return &j.at(p);
    } catch (const json::exception&) {
        return nullptr;
    }
}

std::string describe_step(const StepRecord& st) {
    std::string d = "step " + std::to_string(st.index) + " " + st.op;
    if (!st.label.empty())
        d += " [" + st.label + "]";
    if (st.request.is_object())
        for (const char* k : {"path", "dir", "name", "dev", "ctrl"})
            if (st.request.contains(k) && st.request[k].is_string()) {
                d += " " + st.request[k].get<std::string>();
                break;
            }
    return d;
}

// The disks report in force at step index `at` (a "disks" or "reboot" step at or before it,
// else boot).
const json& disks_at(const RunRecord& r, std::size_t at) {
    for (std::size_t i = std::min(at, r.steps.size()); i >= 1; --i) {
        const auto& st = r.steps[i - 1];
        if ((st.op == "disks" || st.op == "reboot") && st.reply.is_object() &&
            st.reply.value("ok", false) && st.reply.contains("disks"))
            return st.reply["disks"];
    }
    static const json empty = json::array();
    return r.boot_disks.contains("disks") ? r.boot_disks["disks"] : empty;
}

// The scenario disk -> guest disk map in force at step index `at`: the one of the last reboot
// at or before it (sdX names may change across a reboot), else the boot's.
json disk_map_at(const RunRecord& r, std::size_t at) {
    for (std::size_t i = std::min(at, r.steps.size()); i >= 1; --i) {
        const auto& st = r.steps[i - 1];
        if (st.op == "reboot" && st.reply.is_object() && st.reply.contains("disk_map"))
            return st.reply["disk_map"];
    }
    return json(r.disk_map);
}

const json* find_disk(const RunRecord& r, std::size_t at, const json& disks,
                      const std::string& name) {
    std::string sys;
    if (json m = disk_map_at(r, at); m.contains(name) && m[name].is_object())
        sys = m[name].value("name", "");
    for (const auto& d : disks) {
        if ((!sys.empty() && d.value("name", "") == sys) || d.value("dm_name", "") == name ||
            d.value("name", "") == name)
            return &d;
    }
    return nullptr;
}

bool compare_numeric(double v, const json& spec, std::string& why) {
    std::ostringstream o;
    bool ok = true;
    if (spec.contains("eq") && v != spec["eq"].get<double>()) {
        ok = false;
        o << "expected == " << spec["eq"].dump();
    }
    if (spec.contains("min") && v < spec["min"].get<double>()) {
        ok = false;
        o << "expected >= " << spec["min"].dump();
    }
    if (spec.contains("max") && v > spec["max"].get<double>()) {
        ok = false;
        o << "expected <= " << spec["max"].dump();
    }
    why = o.str();
    return ok;
}

std::vector<std::string> ctrl_list(const json& spec) {
    std::vector<std::string> out;
    if (spec.contains("ctrl"))
        out.push_back(spec["ctrl"].get<std::string>());
    if (spec.contains("ctrls"))
        for (const auto& c : spec["ctrls"])
            out.push_back(c.get<std::string>());
    return out;
}

// Events of ctrl logged after snapshot `from` and up to snapshot `to`.
std::vector<const json*> events_between(const RunRecord& r, const std::string& ctrl,
                                        std::size_t from, std::size_t to) {
    std::vector<const json*> out;
    auto it = r.events.find(ctrl);
    if (it == r.events.end())
        return out;
    auto mark = [&](std::size_t i) -> std::uint64_t {
        if (i >= r.event_marks.size())
            return UINT64_MAX;
        auto m = r.event_marks[i].find(ctrl);
        return m == r.event_marks[i].end() ? 0 : m->second;
    };
    std::uint64_t lo = mark(from), hi = mark(to);
    for (const auto& e : it->second)
        if (e.offset >= lo && e.offset < hi)
            out.push_back(&e.e);
    return out;
}

bool event_matches(const json& e, const json& match) {
    for (const auto& [k, v] : match.items())
        if (!e.contains(k) || e[k] != v)
            return false;
    return true;
}

// key_fps programmed on ctrl between snapshots from..to: program events that armed a slot,
// plus keys seen in armed slots of the snapshots in that range.
std::set<std::string> keys_programmed(const RunRecord& r, const std::string& ctrl, std::size_t from,
                                      std::size_t to) {
    std::set<std::string> k;
    for (const json* e : events_between(r, ctrl, from, to))
        if (e->value("ev", "") == "program" && e->value("ok", false) &&
            !e->value("key_fp", "").empty())
            k.insert((*e)["key_fp"].get<std::string>());
    for (std::size_t i = from + 1; i <= to && i < r.snapshots.size(); ++i) {
        auto it = r.snapshots[i].find(ctrl);
        if (it == r.snapshots[i].end() || !it->second.is_object())
            continue;
        for (const auto& sl : member(it->second, "slots", true))
            if (sl.value("armed", false) && !sl.value("key_fp", "").empty())
                k.insert(sl["key_fp"].get<std::string>());
    }
    return k;
}

const json* snapshot(const RunRecord& r, std::size_t i, const std::string& ctrl) {
    if (i >= r.snapshots.size())
        return nullptr;
    auto it = r.snapshots[i].find(ctrl);
    if (it == r.snapshots[i].end() || !it->second.is_object())
        return nullptr;
    return &it->second;
}

std::string join(const std::set<std::string>& s) {
    std::string o;
    for (const auto& x : s)
        o += (o.empty() ? "" : ",") + x;
    return o.empty() ? "(none)" : o;
}

std::string no_engine_hint(const RunRecord& r) {
    return r.engine ? "" : " (this QEMU has no crypto engine: -device ufs,crypto=... is unknown)";
}

} // namespace

json intersect_crypto(const std::vector<json>& children) {
    if (children.empty())
        return nullptr;
    std::uint64_t dun = UINT64_MAX;
    std::map<std::string, std::uint64_t> modes;
    bool first = true, raw = true, wrapped = true;
    for (const auto& c : children) {
        if (!c.is_object())
            return nullptr;
        dun = std::min<std::uint64_t>(dun, c.value("max_dun_bits", std::uint64_t{0}));
        std::map<std::string, std::uint64_t> m;
        for (const auto& [name, v] : member(c, "modes", false).items())
            m[name] = std::stoull(v.get<std::string>(), nullptr, 0);
        if (first) {
            modes = m;
            first = false;
        } else {
            for (auto& [name, mask] : modes)
                mask &= m.count(name) ? m[name] : 0;
        }
        raw = raw && c.contains("raw_keys");
        wrapped = wrapped && c.contains("hw_wrapped_keys");
    }
    json out = {{"max_dun_bits", dun}, {"modes", json::object()}};
    for (const auto& [name, mask] : modes)
        if (mask) {
            char b[32];
            std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(mask));
            out["modes"][name] = b;
        }
    if (out["modes"].empty())
        return nullptr;
    // key types (6.15+): a dm device supports a type only if every child does
    if (raw && children[0].contains("raw_keys"))
        out["raw_keys"] = children[0]["raw_keys"];
    if (wrapped && children[0].contains("hw_wrapped_keys"))
        out["hw_wrapped_keys"] = children[0]["hw_wrapped_keys"];
    return out;
}

std::string guest_release(const RunRecord& r) {
    return r.hello.is_object() ? r.hello.value("release", std::string()) : std::string();
}

std::string kernel_skip_reason(const std::string& cond, const RunRecord& r) {
    if (cond.empty())
        return "";
    std::string rel = guest_release(r);
    if (kernel_matches(cond, rel, r.with_fixes))
        return "";
    return "needs kernel " + cond + ", the guest runs " + rel + (r.with_fixes ? " with fixes" : "");
}

TestPoint check_step(const Scenario& s, const StepRecord& st) {
    TestPoint p;
    p.scenario = s.name;
    p.name = describe_step(st);
    p.seconds = st.seconds;
    if (!st.skipped.empty()) {
        p.passed = true;
        p.skip = st.skipped;
        return p;
    }
    const json& x = st.expect.is_object() ? st.expect : s.steps[st.index - 1].expect;
    std::ostringstream why;
    if (!st.error.empty()) {
        why << st.error << "\n";
    } else if (!st.reply.is_object()) {
        why << "no reply\n";
    } else {
        bool want_ok = x.value("ok", !x.contains("errno"));
        bool got_ok = st.reply.value("ok", false);
        if (want_ok != got_ok)
            why << (want_ok ? "failed: " + st.reply.value("error", std::string("?"))
                            : "succeeded, expected failure")
                << "\n";
        if (x.contains("errno") &&
            st.reply.value("errno_name", "") != x["errno"].get<std::string>())
            why << "errno " << st.reply.value("errno_name", std::string("(none)")) << ", expected "
                << x["errno"].get<std::string>() << "\n";
        if (x.contains("kmsg") && !kmsg_contains(st.reply, x["kmsg"].get<std::string>()))
            why << "kernel log lacks \"" << x["kmsg"].get<std::string>() << "\"\n";
        for (const auto& [ptr, want] : member(x, "reply", false).items()) {
            const json* got = pointer(st.reply, ptr);
            if (!got || *got != want)
                why << "reply " << ptr << " = " << (got ? got->dump() : "(absent)") << ", expected "
                    << want.dump() << "\n";
        }
    }
    p.passed = why.str().empty();
    if (!p.passed)
        p.diag = why.str() + "request: " + st.request.dump() + "\n" + kmsg_tail(st.reply, 8);
    return p;
}

TestPoint check_expectation(const Scenario& s, const Expectation& x, const RunRecord& r) {
    TestPoint p;
    p.scenario = s.name;
    p.name = x.name;
    p.xfail = x.xfail.value_or("");
    const json& j = x.spec;
    auto ref = [&](const char* key, const char* dflt) {
        return step_ref(s, j.contains(key) ? j[key] : json(dflt));
    };
    std::ostringstream why;
    // The kernel rules first, outside the try below: a release outside the rule table fails
    // the point even when it is an expected failure.
    try {
        if (std::string skip = kernel_skip_reason(x.kernel, r); !skip.empty()) {
            p.passed = true;
            p.skip = skip;
            return p;
        }
        // A kernel-conditional xfail: where its condition does not hold (another kernel, or
        // the bug's fix applied) the expectation must pass.
        if (!x.xfail_when.empty() && !kernel_matches(x.xfail_when, guest_release(r), r.with_fixes))
            p.xfail.clear();
    } catch (const ScenarioError& e) {
        p.passed = false;
        p.xfail.clear();
        p.diag = std::string("cannot evaluate the kernel conditions: ") + e.what();
        return p;
    }
    try {
        if (x.kind == "kmsg") {
            std::string needle = j.at("contains").get<std::string>();
            bool absent = j.value("absent", false);
            std::size_t from = ref("from", "boot"), upto = ref("upto", "end");
            bool found = false;
            std::string where;
            if (from == 0 && r.hello.is_object() && kmsg_contains(r.hello, needle))
                found = true, where = "boot";
            for (std::size_t i = std::max<std::size_t>(from, 1);
                 i <= upto && i <= r.steps.size() && !found; ++i)
                if (kmsg_contains(r.steps[i - 1].reply, needle))
                    found = true, where = describe_step(r.steps[i - 1]);
            p.passed = found != absent;
            if (!p.passed)
                why << (absent ? "kernel log has \"" + needle + "\" (at " + where + ")"
                               : "kernel log lacks \"" + needle + "\"");
        } else if (x.kind == "disk_crypto") {
            std::size_t at = ref("at", "end");
            const json& disks = disks_at(r, at);
            std::string name = j.at("disk").get<std::string>();
            const json* d = find_disk(r, at, disks, name);
            if (!d)
                throw ScenarioError("disk '" + name + "' not in the disks report");
            json got = (*d)["crypto"];
            json want;
            if (j.value("none", false)) {
                want = nullptr;
            } else if (j.contains("intersection_of")) {
                std::vector<json> kids;
                for (const auto& c : j["intersection_of"]) {
                    const json* cd = find_disk(r, at, disks, c.get<std::string>());
                    if (!cd)
                        throw ScenarioError("disk '" + c.get<std::string>() +
                                            "' not in the disks report");
                    kids.push_back((*cd)["crypto"]);
                }
                want = intersect_crypto(kids);
                if (j.value("require_crypto", true) && want.is_null()) {
                    why << "the children have no common crypto capability (children: ";
                    for (const auto& k : kids)
                        why << k.dump() << " ";
                    why << ")";
                }
            } else {
                want = j.at("equals");
            }
            if (why.str().empty()) {
                bool eq;
                if (want.is_null() || got.is_null()) {
                    eq = want.is_null() == got.is_null();
                } else {
                    eq = true;
                    for (const auto& [k, v] : want.items())
                        if (!got.contains(k) || got[k] != v)
                            eq = false;
                    // the intersection's key types are exact: a type the children do not all
                    // have must be absent on the dm device
                    if (j.contains("intersection_of"))
                        for (const char* k : {"raw_keys", "hw_wrapped_keys"})
                            if (got.contains(k) && !want.contains(k))
                                eq = false;
                }
                std::vector<std::string> present;
                for (const auto& k : member(j, "lacks", true))
                    if (got.is_object() && got.contains(k.get<std::string>()))
                        present.push_back(k.get<std::string>());
                if (!present.empty() || (j.contains("lacks") && got.is_null()))
                    eq = false;
                p.passed = eq;
                if (!eq) {
                    why << name << " queue/crypto = " << got.dump() << ", expected " << want.dump();
                    if (j.contains("lacks"))
                        why << " without " << j["lacks"].dump();
                } else {
                    p.diag = got.dump();
                }
            }
        } else if (x.kind == "counter") {
            std::string counter = j.at("counter").get<std::string>();
            std::size_t from = ref("from", "boot"), to = ref("to", "end");
            p.passed = true;
            for (const auto& c : ctrl_list(j)) {
                const json* a = snapshot(r, from, c);
                const json* b = snapshot(r, to, c);
                if (!b || !b->contains("counters") || (!j.value("absolute", false) && !a)) {
                    p.passed = false;
                    why << c << ": no crypto-state snapshot" << no_engine_hint(r) << "\n";
                    continue;
                }
                // a misspelt counter would read as 0 and pass "eq": 0 or a "max"
                if (!(*b)["counters"].contains(counter)) {
                    p.passed = false;
                    why << c << ": crypto-state has no counter \"" << counter << "\"\n";
                    continue;
                }
                double v = (*b)["counters"].value(counter, 0.0);
                if (!j.value("absolute", false) && a && a->contains("counters"))
                    v -= (*a)["counters"].value(counter, 0.0);
                std::string w;
                if (!compare_numeric(v, j, w)) {
                    p.passed = false;
                    why << c << ": " << counter << " = " << v << ", " << w << "\n";
                }
            }
        } else if (x.kind == "events") {
            std::size_t from = ref("from", "boot"), to = ref("to", "end");
            json match = member(j, "match", false);
            p.passed = true;
            for (const auto& c : ctrl_list(j)) {
                if (!r.events.count(c)) {
                    p.passed = false;
                    why << c << ": no event log" << no_engine_hint(r) << "\n";
                    continue;
                }
                std::size_t n = 0;
                for (const json* e : events_between(r, c, from, to))
                    n += event_matches(*e, match);
                // A line the schema's parser rejects could be the one that should have matched.
                for (const auto& e : r.events.at(c))
                    if (!e.error.empty()) {
                        p.passed = false;
                        why << c << ": invalid event log, " << e.error << "\n";
                        break;
                    }
                std::string w;
                if (!compare_numeric(static_cast<double>(n), j, w)) {
                    p.passed = false;
                    why << c << ": " << n << " events matching " << match.dump() << ", " << w
                        << "\n";
                }
            }
        } else if (x.kind == "key_on_all") {
            std::size_t from = ref("from", "boot"), to = ref("to", "end");
            std::set<std::string> common;
            bool first = true;
            for (const auto& c : ctrl_list(j)) {
                auto k = keys_programmed(r, c, from, to);
                why << c << " programmed " << join(k) << "\n";
                if (first)
                    common = k, first = false;
                else {
                    std::set<std::string> n;
                    std::set_intersection(common.begin(), common.end(), k.begin(), k.end(),
                                          std::inserter(n, n.begin()));
                    common = n;
                }
            }
            p.passed = !common.empty();
            if (p.passed) {
                p.diag = "common keys: " + join(common);
                why.str("");
            } else {
                why << "no key was programmed on every controller" << no_engine_hint(r);
            }
        } else if (x.kind == "keys_evicted") {
            std::size_t from = ref("from", "boot"), to = ref("to", "end"), at = ref("at", "end");
            std::set<std::string> keys;
            for (const auto& c : ctrl_list(j)) {
                auto k = keys_programmed(r, c, from, to);
                keys.insert(k.begin(), k.end());
            }
            if (keys.empty()) {
                p.passed = false;
                why << "no keys were programmed between the steps, nothing to check"
                    << no_engine_hint(r);
            } else {
                p.passed = true;
                for (const auto& c : ctrl_list(j)) {
                    const json* snap = snapshot(r, at, c);
                    if (!snap) {
                        p.passed = false;
                        why << c << ": no crypto-state snapshot\n";
                        continue;
                    }
                    for (const auto& sl : member(*snap, "slots", true))
                        if (sl.value("armed", false) && keys.count(sl.value("key_fp", ""))) {
                            p.passed = false;
                            why << c << " slot " << sl.value("slot", -1) << " still holds key "
                                << sl.value("key_fp", "") << "\n";
                        }
                }
                if (p.passed)
                    p.diag = "keys checked: " + join(keys);
            }
        } else if (x.kind == "reply") {
            std::size_t at = ref("step", "end");
            if (at == 0 || at > r.steps.size())
                throw ScenarioError("reply expectation needs a step");
            const json* got = pointer(r.steps[at - 1].reply, j.at("pointer").get<std::string>());
            if (j.contains("equals")) {
                p.passed = got && *got == j["equals"];
            } else if (j.contains("contains")) {
                p.passed = got && got->is_string() &&
                           got->get<std::string>().find(j["contains"].get<std::string>()) !=
                               std::string::npos;
            } else {
                p.passed = got != nullptr;
            }
            if (!p.passed)
                why << "reply " << j["pointer"].get<std::string>() << " = "
                    << (got ? got->dump() : "(absent)") << ", expected "
                    << (j.contains("equals") ? j["equals"].dump()
                                             : j.value("contains", json()).dump());
        }
    } catch (const std::exception& e) {
        p.passed = false;
        why << "cannot evaluate: " << e.what();
    }
    if (!p.passed)
        p.diag = why.str();
    return p;
}

} // namespace icemu::runner
