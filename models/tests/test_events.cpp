// Unit tests for events.hpp: the docs/event-log.md schema v1 parser. A second path decodes the
// same lines with nlohmann::json's DOM; randomly mutated lines that nlohmann rejects must be
// rejected by the parser too.
#include "icemu/models/events.hpp"

#include "test_util.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <nlohmann/json.hpp>

#include <sstream>

using namespace icemu::models::events;
using Catch::Matchers::ContainsSubstring;
using icemu::models::test::rng;

namespace {

const char* kLog =
    R"({"v":1,"seq":0,"t_ns":0,"ctrl":"ufs0","ev":"realize","slots":8,"cfgptr":32,"caps":[{"idx":0,"algid":0,"sdusb":15,"ks":3},{"idx":1,"algid":0,"sdusb":8,"ks":1}],"wipe_on_disable":true,"log_keys":false,"frontend":"ufs"})"
    "\n"
    R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":0,"was_armed":false})"
    "\n"
    R"({"v":1,"seq":2,"t_ns":20,"ctrl":"ufs0","ev":"enable","on":true,"cge":true})"
    "\n"
    R"({"v":1,"seq":3,"t_ns":30,"ctrl":"ufs0","ev":"program","slot":3,"capidx":0,"dusize":4096,"key_fp":"0123456789abcdef","ok":true})"
    "\n"
    R"({"v":1,"seq":4,"t_ns":40,"ctrl":"ufs0","ev":"io","slot":3,"ce":true,"lun":0,"op":"write","opcode":42,"lba":100,"blocks":2,"bytes":8192,"block_size":4096,"dun":18446744073709551615,"dusize":4096,"key_fp":"0123456789abcdef","ocs":0,"status":0,"queue":"sdb","future_field":{"x":[1,2.5,null]}})"
    "\n"
    R"({"v":1,"seq":5,"t_ns":50,"ctrl":"ufs0","ev":"io","slot":-1,"ce":false,"lun":1,"op":"read","opcode":40,"lba":0,"blocks":1,"bytes":4096,"block_size":4096,"dun":0,"dusize":0,"key_fp":"","ocs":0,"status":0,"queue":"mcq:1"})"
    "\n"
    R"({"v":1,"seq":6,"t_ns":60,"ctrl":"ufs0","ev":"program","slot":4,"capidx":9,"dusize":0,"key_fp":"fedcba9876543210","ok":false,"error":"capidx","key":"00ff"})"
    "\n"
    R"({"v":1,"seq":7,"t_ns":70,"ctrl":"ufs0","ev":"disarm","slot":3})"
    "\n"
    R"({"v":1,"seq":8,"t_ns":80,"ctrl":"ufs0","ev":"fault","kind":"fatal","remaining":0})"
    "\n"
    R"({"v":1,"seq":9,"t_ns":90,"ctrl":"ufs0","ev":"wipe","reason":"disable","armed":1})"
    "\n";

// A wrapped-only device (crypto-wrapped-keys=on, crypto-raw-keys=off) as docs/event-log.md
// describes it: import, prepare, a PROGRAM and its wrapped program event, a refused raw program,
// a stale ephemeral blob refused, a derive, and Linux's evict of the wrapped slot.
const char* kKmLog =
    R"({"v":1,"seq":0,"t_ns":0,"ctrl":"ufs0","ev":"realize","slots":8,"cfgptr":32,"caps":[{"idx":0,"algid":0,"sdusb":15,"ks":3}],"wipe_on_disable":true,"log_keys":false,"frontend":"ufs","wrapped_keys":true,"raw_keys":false})"
    "\n"
    R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"km","op":"import","ok":true,"master_fp":"1a2b3c4d5e6f7081"})"
    "\n"
    R"({"v":1,"seq":2,"t_ns":20,"ctrl":"ufs0","ev":"km","op":"prepare","ok":true,"master_fp":"1a2b3c4d5e6f7081"})"
    "\n"
    R"({"v":1,"seq":3,"t_ns":30,"ctrl":"ufs0","ev":"km","op":"program","ok":true,"slot":2,"master_fp":"1a2b3c4d5e6f7081"})"
    "\n"
    R"({"v":1,"seq":4,"t_ns":30,"ctrl":"ufs0","ev":"program","slot":2,"capidx":0,"dusize":4096,"key_fp":"0123456789abcdef","ok":true,"wrapped":true})"
    "\n"
    R"({"v":1,"seq":5,"t_ns":40,"ctrl":"ufs0","ev":"program","slot":3,"capidx":0,"dusize":4096,"key_fp":"fedcba9876543210","ok":false,"error":"key-type"})"
    "\n"
    R"({"v":1,"seq":6,"t_ns":50,"ctrl":"ufs0","ev":"km","op":"program","ok":false,"error":"blob","slot":4,"master_fp":""})"
    "\n"
    R"({"v":1,"seq":7,"t_ns":60,"ctrl":"ufs0","ev":"km","op":"derive","ok":true,"master_fp":"1a2b3c4d5e6f7081"})"
    "\n"
    R"({"v":1,"seq":8,"t_ns":70,"ctrl":"ufs0","ev":"evict","slot":2,"was_armed":true})"
    "\n";

// Second path: decode a line with nlohmann's DOM (no validation beyond what is needed).
Event reference_decode(const std::string& line) {
    const auto j = nlohmann::json::parse(line);
    Event e;
    e.v = j.at("v").get<int>();
    e.seq = j.at("seq").get<std::uint64_t>();
    e.t_ns = j.at("t_ns").get<std::uint64_t>();
    e.ctrl = j.at("ctrl").get<std::string>();
    const auto ev = j.at("ev").get<std::string>();
    if (ev == "realize") {
        Realize r;
        r.slots = j.at("slots").get<unsigned>();
        r.cfgptr = j.at("cfgptr").get<unsigned>();
        for (const auto& c : j.at("caps")) {
            r.caps.push_back({c.at("idx").get<unsigned>(), c.at("algid").get<unsigned>(),
                              c.at("sdusb").get<unsigned>(), c.at("ks").get<unsigned>()});
        }
        r.wipe_on_disable = j.at("wipe_on_disable").get<bool>();
        r.log_keys = j.at("log_keys").get<bool>();
        r.frontend = j.at("frontend").get<std::string>();
        if (j.contains("wrapped_keys")) {
            r.wrapped_keys = j.at("wrapped_keys").get<bool>();
        }
        if (j.contains("raw_keys")) {
            r.raw_keys = j.at("raw_keys").get<bool>();
        }
        e.body = r;
    } else if (ev == "enable") {
        e.body = Enable{j.at("on").get<bool>(), j.at("cge").get<bool>()};
    } else if (ev == "wipe") {
        const auto r = j.at("reason").get<std::string>();
        e.body = Wipe{r == "disable" ? WipeReason::disable
                      : r == "reset" ? WipeReason::reset
                                     : WipeReason::unrealize,
                      j.at("armed").get<unsigned>()};
    } else if (ev == "program") {
        Program p;
        p.slot = j.at("slot").get<unsigned>();
        p.capidx = j.at("capidx").get<unsigned>();
        p.dusize = j.at("dusize").get<unsigned>();
        p.key_fp = j.at("key_fp").get<std::string>();
        p.ok = j.at("ok").get<bool>();
        p.error = j.value("error", "");
        if (j.contains("key")) {
            p.key = j.at("key").get<std::string>();
        }
        if (j.contains("wrapped")) {
            p.wrapped = j.at("wrapped").get<bool>();
        }
        e.body = p;
    } else if (ev == "evict") {
        e.body = Evict{j.at("slot").get<unsigned>(), j.at("was_armed").get<bool>()};
    } else if (ev == "disarm") {
        e.body = Disarm{j.at("slot").get<unsigned>()};
    } else if (ev == "io") {
        Io io;
        io.slot = j.at("slot").get<int>();
        io.ce = j.at("ce").get<bool>();
        io.lun = j.at("lun").get<unsigned>();
        io.op = j.at("op").get<std::string>() == "read" ? IoOp::read : IoOp::write;
        io.opcode = j.at("opcode").get<unsigned>();
        io.lba = j.at("lba").get<std::uint64_t>();
        io.blocks = j.at("blocks").get<std::uint64_t>();
        io.bytes = j.at("bytes").get<std::uint64_t>();
        io.block_size = j.at("block_size").get<unsigned>();
        io.dun = j.at("dun").get<std::uint64_t>();
        io.dusize = j.at("dusize").get<unsigned>();
        io.key_fp = j.at("key_fp").get<std::string>();
        io.ocs = j.at("ocs").get<unsigned>();
        io.status = j.at("status").get<int>();
        io.queue = j.at("queue").get<std::string>();
        io.error = j.value("error", "");
        e.body = io;
    } else if (ev == "fault") {
        e.body = Fault{j.at("kind").get<std::string>() == "ocs" ? FaultKind::ocs : FaultKind::fatal,
                       j.at("remaining").get<unsigned>()};
    } else if (ev == "km") {
        Km k;
        const auto op = j.at("op").get<std::string>();
        k.op = op == "import"     ? KmOp::import_key
               : op == "generate" ? KmOp::generate
               : op == "prepare"  ? KmOp::prepare
               : op == "derive"   ? KmOp::derive
                                  : KmOp::program;
        k.ok = j.at("ok").get<bool>();
        k.error = j.value("error", "");
        if (j.contains("slot")) {
            k.slot = j.at("slot").get<unsigned>();
        }
        k.master_fp = j.at("master_fp").get<std::string>();
        e.body = k;
    }
    return e;
}

bool same(const Event& a, const Event& b) {
    return a.v == b.v && a.seq == b.seq && a.t_ns == b.t_ns && a.ctrl == b.ctrl && a.body == b.body;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l)) {
        out.push_back(l);
    }
    return out;
}

std::string replace_line(std::size_t n, const std::string& line) {
    auto ls = lines_of(kLog);
    ls.at(n - 1) = line;
    std::string out;
    for (const auto& l : ls) {
        out += l + "\n";
    }
    return out;
}

std::string error_of(const std::string& text) {
    std::istringstream in(text);
    try {
        read_log(in);
    } catch (const LogError& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("a well-formed log parses into typed events", "[events]") {
    std::istringstream in(kLog);
    const auto evs = read_log(in);
    REQUIRE(evs.size() == 10);
    const auto& r = std::get<Realize>(evs[0].body);
    CHECK(r.slots == 8);
    CHECK(r.cfgptr == 0x20);
    CHECK(r.caps == std::vector<CapEntry>{{0, 0, 15, 3}, {1, 0, 8, 1}});
    CHECK(r.wipe_on_disable);
    const auto& io = std::get<Io>(evs[4].body);
    CHECK(io.dun == 18446744073709551615ull); // exact unsigned 64-bit
    CHECK(io.slot == 3);
    CHECK(io.bytes == 8192);
    CHECK(std::get<Io>(evs[5].body).slot == -1);
    CHECK(std::get<Io>(evs[5].body).queue == "mcq:1");
    const auto& bad = std::get<Program>(evs[6].body);
    CHECK_FALSE(bad.ok);
    CHECK(bad.error == "capidx");
    CHECK(bad.key == "00ff");
    CHECK(std::get<Fault>(evs[8].body).kind == FaultKind::fatal);
    CHECK(std::get<Wipe>(evs[9].body) == Wipe{WipeReason::disable, 1});
}

TEST_CASE("the parser agrees with an nlohmann DOM decoding of every line", "[events]") {
    for (const auto& l : lines_of(kLog)) {
        CAPTURE(l);
        CHECK(same(parse_event(l), reference_decode(l)));
    }
}

TEST_CASE("serialised events round-trip through the parser and nlohmann", "[events]") {
    for (const auto& l : lines_of(kLog)) {
        const Event e = parse_event(l);
        const std::string out = to_json_line(e);
        CAPTURE(out);
        CHECK(same(parse_event(out), e));
        CHECK(same(reference_decode(out), e));
    }
    Event odd;
    odd.ctrl = "/machine/peripheral-anon/device[0]\t\"q\"\\é";
    odd.body = Disarm{1};
    CHECK(parse_event(to_json_line(odd)).ctrl == odd.ctrl);
}

TEST_CASE("key-manager events and the wrapped-key fields parse", "[events][hw_wrapped]") {
    const std::string text = kKmLog;
    std::istringstream in(text);
    const auto log = read_log(in);
    REQUIRE(log.size() == 9);
    const auto& r = std::get<Realize>(log[0].body);
    CHECK(r.wrapped_keys == true);
    CHECK(r.raw_keys == false);
    CHECK_FALSE(r.accepts_raw_keys());
    const auto& imp = std::get<Km>(log[1].body);
    CHECK(imp.op == KmOp::import_key);
    CHECK(imp.ok);
    CHECK(imp.error.empty());
    CHECK_FALSE(imp.slot);
    CHECK(imp.master_fp == "1a2b3c4d5e6f7081");
    const auto& prog = std::get<Km>(log[3].body);
    CHECK(prog.op == KmOp::program);
    CHECK(prog.slot == 2u);
    const auto& wp = std::get<Program>(log[4].body);
    CHECK(wp.is_wrapped());
    CHECK(wp.key_fp == "0123456789abcdef");
    const auto& raw = std::get<Program>(log[5].body);
    CHECK_FALSE(raw.wrapped);
    CHECK_FALSE(raw.is_wrapped());
    CHECK(raw.error == "key-type");
    const auto& bad = std::get<Km>(log[6].body);
    CHECK_FALSE(bad.ok);
    CHECK(bad.error == "blob");
    CHECK(bad.master_fp.empty());
    CHECK(std::get<Km>(log[7].body).op == KmOp::derive);
    CHECK(event_name(log[7].body) == "km");
    // The raw-key logs of devices without the key manager carry none of the new fields.
    std::istringstream old(kLog);
    const auto raw_log = read_log(old);
    CHECK_FALSE(std::get<Realize>(raw_log[0].body).wrapped_keys);
    CHECK(std::get<Realize>(raw_log[0].body).accepts_raw_keys());
    CHECK_FALSE(std::get<Program>(raw_log[3].body).wrapped);
    // Both decodings agree, and the serialiser round-trips every line.
    for (const auto& l : lines_of(kKmLog)) {
        INFO(l);
        const Event e = parse_event(l);
        CHECK(same(e, reference_decode(l)));
        CHECK(same(parse_event(to_json_line(e)), e));
        CHECK(to_json_line(e) == l);
    }
}

TEST_CASE("key-manager events that break the schema's rules are refused", "[events][hw_wrapped]") {
    const std::string head = R"({"v":1,"seq":0,"t_ns":0,"ctrl":"ufs0","ev":"km",)";
    const auto refused = [&](const std::string& rest, const std::string& why) {
        INFO(rest);
        CHECK_THROWS_WITH(parse_event(head + rest), ContainsSubstring(why));
    };
    refused(R"("op":"program","ok":true,"master_fp":"1a2b3c4d5e6f7081"})", "needs a slot");
    refused(R"("op":"import","ok":true,"error":"blob","master_fp":"1a2b3c4d5e6f7081"})",
            "must not have an error");
    refused(R"("op":"import","ok":false,"master_fp":""})", "needs an error");
    refused(R"("op":"import","ok":true,"master_fp":""})", "master_fp must be 16");
    refused(R"("op":"import","ok":true,"master_fp":"1A2B3C4D5E6F7081"})", "master_fp must be 16");
    refused(R"("op":"program","ok":false,"error":"slot","slot":40,"master_fp":"1a2b3c4d5e6f7081"})",
            "ok=false must have master_fp \"\"");
    refused(R"("op":"unwrap","ok":true,"master_fp":"1a2b3c4d5e6f7081"})", "unknown km op");
    refused(R"("op":"prepare","ok":false,"error":"tag","master_fp":""})", "unknown km error");
    refused(R"("op":"prepare","ok":true})", "missing field \"master_fp\"");
    refused(R"("op":"program","ok":true,"slot":-1,"master_fp":"1a2b3c4d5e6f7081"})", "slot");
    // The optional booleans are booleans.
    CHECK_THROWS_AS(
        parse_event(R"({"v":1,"seq":0,"t_ns":0,"ctrl":"u","ev":"program","slot":0,"capidx":0,)"
                    R"("dusize":4096,"key_fp":"0123456789abcdef","ok":true,"wrapped":1})"),
        LogError);
}

TEST_CASE("malformed lines are rejected with their line number", "[events]") {
    struct Case {
        std::size_t line;
        std::string text;
        std::string message;
    };
    const auto c = GENERATE(
        Case{2, R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":0)", "malformed"},
        Case{2,
             R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":0,"was_armed":false} x)",
             "trailing"},
        Case{2, R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":0})",
             "missing field \"was_armed\""},
        Case{2,
             R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":"0","was_armed":false})",
             "\"slot\" must be"},
        Case{2,
             R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":1.5,"was_armed":false})",
             "\"slot\" must be"},
        Case{2,
             R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":-2,"was_armed":false})",
             "\"slot\" must be"},
        Case{
            2,
            R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"evict","slot":1,"slot":2,"was_armed":false})",
            "duplicate field"},
        Case{2, R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"teleport"})", "unknown ev"},
        Case{2, R"({"v":2,"seq":1,"t_ns":10,"ctrl":"ufs0","ev":"disarm","slot":0})",
             "unsupported schema version 2"},
        Case{2, R"({"v":1,"seq":2,"t_ns":10,"ctrl":"ufs0","ev":"disarm","slot":0})",
             "seq gap: expected 1, got 2"},
        Case{2, R"({"v":1,"seq":1,"t_ns":10,"ctrl":"ufs1","ev":"disarm","slot":0})", "ctrl"},
        Case{2, "", "empty line"},
        Case{1, R"({"v":1,"seq":0,"t_ns":0,"ctrl":"ufs0","ev":"disarm","slot":0})",
             "first event must be \"realize\""},
        Case{
            5,
            R"({"v":1,"seq":4,"t_ns":40,"ctrl":"ufs0","ev":"io","slot":3,"ce":true,"lun":0,"op":"write","opcode":42,"lba":100,"blocks":2,"bytes":8192,"block_size":4096,"dun":18446744073709551616,"dusize":4096,"key_fp":"0123456789abcdef","ocs":0,"status":0,"queue":"sdb"})",
            "\"dun\" must be an unsigned 64-bit integer"},
        Case{
            5,
            R"({"v":1,"seq":4,"t_ns":40,"ctrl":"ufs0","ev":"io","slot":3,"ce":false,"lun":0,"op":"write","opcode":42,"lba":100,"blocks":2,"bytes":8192,"block_size":4096,"dun":0,"dusize":0,"key_fp":"","ocs":0,"status":0,"queue":"sdb"})",
            "ce=false"},
        Case{
            5,
            R"({"v":1,"seq":4,"t_ns":40,"ctrl":"ufs0","ev":"io","slot":3,"ce":true,"lun":0,"op":"erase","opcode":42,"lba":100,"blocks":2,"bytes":8192,"block_size":4096,"dun":0,"dusize":0,"key_fp":"","ocs":0,"status":0,"queue":"sdb"})",
            "unknown io op"},
        Case{
            4,
            R"({"v":1,"seq":3,"t_ns":30,"ctrl":"ufs0","ev":"program","slot":3,"capidx":0,"dusize":4096,"key_fp":"0123456789ABCDEF","ok":true})",
            "key_fp"},
        Case{
            4,
            R"({"v":1,"seq":3,"t_ns":30,"ctrl":"ufs0","ev":"program","slot":3,"capidx":0,"dusize":4096,"key_fp":"0123456789abcdef","ok":false})",
            "needs an error"},
        Case{10, R"({"v":1,"seq":9,"t_ns":90,"ctrl":"ufs0","ev":"wipe","reason":"nap","armed":1})",
             "unknown wipe reason"},
        Case{
            3,
            R"({"v":1,"seq":2,"t_ns":20,"ctrl":"ufs0","ev":"realize","slots":8,"cfgptr":32,"caps":[],"wipe_on_disable":true,"log_keys":false,"frontend":"ufs"})",
            "only be the first"},
        Case{
            1,
            R"({"v":1,"seq":0,"t_ns":0,"ctrl":"ufs0","ev":"realize","slots":8,"cfgptr":32,"caps":[{"idx":0}],"wipe_on_disable":true,"log_keys":false,"frontend":"ufs"})",
            "caps entry"});
    CAPTURE(c.text);
    const std::string err = error_of(replace_line(c.line, c.text));
    CHECK_THAT(err, ContainsSubstring("line " + std::to_string(c.line) + ":"));
    CHECK_THAT(err, ContainsSubstring(c.message));
}

TEST_CASE("a final newline is allowed and CRLF line ends are accepted", "[events]") {
    std::string crlf;
    for (const auto& l : lines_of(kLog)) {
        crlf += l + "\r\n";
    }
    std::istringstream in(crlf);
    CHECK(read_log(in).size() == 10);
}

TEST_CASE("randomly mutated lines that are not JSON are rejected", "[events][fuzz]") {
    const auto lines = lines_of(kLog);
    static const char alphabet[] = "{}[]\":,\\-+.eE0123456789 tfnulr\x01\x80\xc3\xa9";
    int rejected_by_both = 0;
    for (int iter = 0; iter < 4000; ++iter) {
        std::string l = lines[rng()() % lines.size()];
        const int edits = 1 + static_cast<int>(rng()() % 3);
        for (int k = 0; k < edits; ++k) {
            const std::size_t pos = rng()() % l.size();
            const char ch = alphabet[rng()() % (sizeof alphabet - 1)];
            switch (rng()() % 3) {
            case 0:
                l[pos] = ch;
                break;
            case 1:
                l.insert(l.begin() + static_cast<std::ptrdiff_t>(pos), ch);
                break;
            default:
                l.erase(pos, 1);
                break;
            }
        }
        if (!nlohmann::json::accept(l)) {
            CAPTURE(l);
            CHECK_THROWS_AS(parse_event(l, 7), LogError);
            ++rejected_by_both;
        } else {
            // Valid JSON: the parser either accepts it with the DOM's values or names a
            // schema error; it never crashes or accepts silently different values.
            try {
                const Event e = parse_event(l, 7);
                Event ref;
                REQUIRE_NOTHROW(ref = reference_decode(l));
                CHECK(same(e, ref));
            } catch (const LogError& err) {
                CHECK_THAT(std::string(err.what()), ContainsSubstring("line 7:"));
            }
        }
    }
    CHECK(rejected_by_both > 1000); // the fuzzer does produce malformed JSON
}
