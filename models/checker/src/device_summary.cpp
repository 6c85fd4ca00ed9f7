#include "icemu/checker/device_summary.hpp"

#include <map>
#include <ostream>
#include <set>
#include <stdexcept>
#include <variant>

#include "icemu/models/events.hpp"
#include "icemu/models/ufshci_crypto.hpp"

namespace icemu::checker {

namespace ev = icemu::models::events;

namespace {

struct Counts : ev::Tally {
    unsigned slots = 0;
    std::string frontend;
    std::set<std::string> keys;
    std::vector<std::pair<unsigned, std::string>> left; // (slot, key fingerprint) at the end
    std::vector<std::string> mismatches;
};

Counts replay(const std::string& ctrl, const std::string& path) {
    std::vector<ev::Event> events;
    try {
        events = ev::read_log_file(path);
    } catch (const std::exception& e) {
        throw std::runtime_error(ctrl + " (" + path + "): " + e.what());
    }
    Counts c;
    if (events.empty())
        return c;
    const auto* realize = std::get_if<ev::Realize>(&events.front().body);
    if (!realize)
        throw std::runtime_error(ctrl + ": the log does not start with realize");
    c.slots = realize->slots;
    c.frontend = realize->frontend.empty() ? "ufs" : realize->frontend;
    icemu::models::ufshci::LogReplay r(*realize);
    for (const auto& e : events) {
        if (&e != &events.front()) // LogReplay was built from the realize
            r.apply(e);
        c.add(e);
        if (const auto* p = std::get_if<ev::Program>(&e.body); p && p->ok)
            c.keys.insert(p->key_fp);
    }
    r.finish();
    for (const auto& m : r.mismatches())
        c.mismatches.push_back("seq " + std::to_string(m.seq) + ": " + m.what);
    for (unsigned s = 0; s < c.slots; ++s)
        if (r.slot(s).armed)
            c.left.emplace_back(s, r.slot(s).key_fp);
    return c;
}

} // namespace

nlohmann::json device_summary(const std::vector<std::pair<std::string, std::string>>& logs,
                              const DeviceSummaryOptions& opt, std::ostream& out) {
    using nlohmann::json;
    json result = {{"controllers", json::object()}, {"verdicts", json::array()}};
    std::vector<std::string> bad_replay, left;
    out << "what the device saw:\n";
    for (const auto& [ctrl, path] : logs) {
        Counts c = replay(ctrl, path);
        out << "  " << ctrl << " (" << c.frontend << ", " << c.slots << " keyslots): " << c.programs
            << " key programs (" << c.keys.size() << " distinct keys, " << c.program_errors
            << " refused), " << c.evicts << " evicts, " << c.wipes << " wipes; crypto I/O "
            << c.ce_writes << " writes, " << c.ce_reads << " reads (" << c.refused << " refused); "
            << c.plain_ios << " I/Os without crypto\n";
        if (c.left.empty()) {
            out << "    no key programmed at the end\n";
        }
        json lj = json::array();
        for (const auto& [slot, fp] : c.left) {
            out << "    slot " << slot << " still holds key " << fp << "\n";
            lj.push_back({{"slot", slot}, {"key_fp", fp}});
            left.push_back(ctrl + " slot " + std::to_string(slot) + " (key " + fp + ")");
        }
        for (const auto& m : c.mismatches)
            bad_replay.push_back(ctrl + " " + m);
        result["controllers"][ctrl] = {
            {"slots", c.slots},       {"programs", c.programs}, {"distinct_keys", c.keys.size()},
            {"evicts", c.evicts},     {"wipes", c.wipes},       {"ce_writes", c.ce_writes},
            {"ce_reads", c.ce_reads}, {"refused", c.refused},   {"plain_ios", c.plain_ios},
            {"faults", c.faults},     {"keys_left", lj},        {"mismatches", c.mismatches}};
    }
    auto verdict = [&](const std::string& name, const std::string& status,
                       const std::string& reason) {
        out << "  "
            << (status == "fail"   ? "FAIL"
                : status == "pass" ? "pass"
                                   : "n/a ")
            << " " << name << ": " << reason << "\n";
        result["verdicts"].push_back({{"name", name}, {"status", status}, {"reason", reason}});
    };
    out << "icemu-check (device only):\n";
    if (bad_replay.empty()) {
        verdict("replay", "pass", "every event agrees with the register model");
    } else {
        std::string r = std::to_string(bad_replay.size()) +
                        " events contradict the model; first: " + bad_replay.front();
        verdict("replay", "fail", r);
    }
    if (!opt.expect_evicted) {
        verdict("keys-evicted", "not-applicable",
                "a filesystem on an emulated disk was still mounted (or nothing was said)");
    } else if (left.empty()) {
        verdict("keys-evicted", "pass", "nothing mounted and no key left in any keyslot");
    } else {
        std::string r = "nothing mounted, yet " + std::to_string(left.size()) +
                        " keyslots still hold a key: " + left.front();
        verdict("keys-evicted", "fail", r);
    }
    return result;
}

} // namespace icemu::checker
