// The event log schema (common/icemu/event-log.def) against its three readers: the parser and
// serialiser of events.hpp, and the tables of docs/event-log.md. Every line below is built from
// the schema's rows, so a value the device can write (it takes its strings from the same rows)
// and the parser refuses, a field the parser or to_json_line forgets, or a doc table that
// lags behind, fails here.
#include "icemu/models/event_schema.hpp"
#include "icemu/models/events.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace icemu::models::events;
namespace sc = icemu::models::events::schema;
using Catch::Matchers::ContainsSubstring;

namespace {

struct Kv {
    std::string name;
    std::string json; ///< the value as JSON text
};

std::string quoted(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// A valid value of each type. Cross-field rules of the parser are met by the choices: io with
// ce=false needs slot -1 and an empty key_fp, program with ok=false needs an error.
std::string default_value(const sc::Field& f) {
    switch (f.type) {
    case sc::Type::INT:
        return f.name == "v" ? "1" : "-1";
    case sc::Type::UINT:
    case sc::Type::U64:
        return "0";
    case sc::Type::BOOL:
        return "false";
    case sc::Type::STRING:
        return f.name == "ctrl" ? "\"ufs0\"" : "\"sdb\"";
    case sc::Type::FP:
        return "\"\"";
    case sc::Type::HEX:
        return "\"00ff\"";
    case sc::Type::CAPS: {
        std::string caps = "[{";
        for (const auto& c : sc::kCapFields) {
            caps += (caps.size() > 2 ? "," : "") + quoted(c.name) + ":" +
                    (c.name == "sdusb" ? "8"
                     : c.name == "ks"  ? "3"
                                       : "0");
        }
        return caps + "}]";
    }
    default:
        return quoted(sc::values_of(f.type)[0].text);
    }
}

// Every field of `event`, header first, optional ones included, in the schema's order.
std::vector<Kv> fields_of(std::string_view event) {
    std::vector<Kv> out;
    for (const auto& f : sc::kFields) {
        if (f.event.empty() || f.event == event) {
            out.push_back({std::string(f.name), f.name == "ev" ? quoted(event) : default_value(f)});
        }
    }
    return out;
}

std::string line_of(const std::vector<Kv>& kv) {
    std::string s = "{";
    for (const auto& [k, v] : kv) {
        s += (s.size() > 1 ? "," : "") + quoted(k) + ":" + v;
    }
    return s + "}";
}

std::vector<Kv> with(std::vector<Kv> kv, const std::string& name, const std::string& json) {
    for (auto& x : kv) {
        if (x.name == name) {
            x.json = json;
        }
    }
    return kv;
}

std::vector<Kv> without(std::vector<Kv> kv, const std::string& name) {
    std::erase_if(kv, [&](const Kv& x) { return x.name == name; });
    return kv;
}

// The decoded value of an enumerated field as text, through the typed struct.
std::string decoded(const Event& e, std::string_view field) {
    return std::visit(
        [&](const auto& b) -> std::string {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, Realize>) {
                return field == "frontend" ? b.frontend : "?";
            } else if constexpr (std::is_same_v<T, Wipe>) {
                return std::string(to_string(b.reason));
            } else if constexpr (std::is_same_v<T, Program>) {
                return b.error;
            } else if constexpr (std::is_same_v<T, Io>) {
                return field == "op" ? std::string(to_string(b.op)) : b.error.str();
            } else if constexpr (std::is_same_v<T, Fault>) {
                return std::string(to_string(b.kind));
            } else if constexpr (std::is_same_v<T, Km>) {
                return field == "op" ? std::string(to_string(b.op)) : b.error.str();
            } else {
                return "?";
            }
        },
        e.body);
}

bool is_enum(sc::Type t) {
    return !sc::values_of(t).empty();
}

} // namespace

TEST_CASE("schema: a line with every field of each event type parses", "[events][schema]") {
    for (const auto& ev : sc::kEvents) {
        const std::string line = line_of(fields_of(ev.text));
        INFO(line);
        Event e;
        REQUIRE_NOTHROW(e = parse_event(line));
        CHECK(event_name(e.body) == ev.text);
    }
}

TEST_CASE("schema: every enumerated value is accepted in its field and decodes to itself",
          "[events][schema]") {
    std::size_t checked = 0;
    for (const auto& f : sc::kFields) {
        if (!is_enum(f.type) || f.event.empty()) {
            continue;
        }
        for (const auto& v : sc::values_of(f.type)) {
            const std::string line =
                line_of(with(fields_of(f.event), std::string(f.name), quoted(v.text)));
            INFO(line);
            Event e;
            REQUIRE_NOTHROW(e = parse_event(line));
            CHECK(decoded(e, f.name) == v.text);
            ++checked;
        }
        // A misspelt value is refused.
        const std::string bad = std::string(sc::values_of(f.type)[0].text) + "x";
        CHECK_THROWS_AS(
            parse_event(line_of(with(fields_of(f.event), std::string(f.name), quoted(bad)))),
            LogError);
    }
    // The `ev` values themselves: each event type is one line above.
    CHECK(checked == std::size(sc::kFrontends) + std::size(sc::kWipeReasons) +
                         std::size(sc::kProgramErrors) + std::size(sc::kIoOps) +
                         std::size(sc::kIoErrors) + std::size(sc::kFaultKinds) +
                         std::size(sc::kKmOps) + std::size(sc::kKmErrors));
}

TEST_CASE("schema: the io error \"opcode\" (a CE WRITE SAME refusal) is accepted",
          "[events][schema]") {
    // The refusal as the device logs it (docs/event-log.md `io`).
    const std::string line =
        R"({"v":1,"seq":0,"t_ns":5,"ctrl":"ufs0","ev":"io","slot":0,"ce":true,"lun":0,)"
        R"("op":"write","opcode":147,"lba":0,"blocks":1,"bytes":0,"block_size":4096,"dun":0,)"
        R"("dusize":0,"key_fp":"","ocs":9,"status":-1,"queue":"sdb","error":"opcode"})";
    const Event e = parse_event(line);
    CHECK(std::get<Io>(e.body).error == "opcode");
    CHECK(to_string(IoError::opcode) == "opcode");
}

TEST_CASE("schema: every always-present field is required and type-checked", "[events][schema]") {
    for (const auto& ev : sc::kEvents) {
        const auto full = fields_of(ev.text);
        for (const auto& f : sc::kFields) {
            if (!(f.event.empty() || f.event == ev.text)) {
                continue;
            }
            const std::string name(f.name);
            INFO(ev.text << "." << name);
            if (f.presence == sc::Presence::ALWAYS) {
                CHECK_THROWS_AS(parse_event(line_of(without(full, name))), LogError);
            }
            // A value of the wrong JSON type: a string where a number or boolean belongs,
            // a number where a string, a boolean or an array belongs.
            const bool stringy = f.type == sc::Type::STRING || f.type == sc::Type::FP ||
                                 f.type == sc::Type::HEX || is_enum(f.type);
            CHECK_THROWS_AS(parse_event(line_of(with(full, name, stringy ? "7" : "\"7\""))),
                            LogError);
        }
    }
}

TEST_CASE("schema: to_json_line writes each event's fields in the schema's order",
          "[events][schema]") {
    for (const auto& ev : sc::kEvents) {
        const auto full = fields_of(ev.text);
        const Event e = parse_event(line_of(full));
        const std::string out = to_json_line(e);
        INFO(out);
        std::size_t pos = 0;
        for (const auto& kv : full) {
            const auto at = out.find(quoted(kv.name) + ":", pos);
            CHECK(at != std::string::npos);
            pos = at == std::string::npos ? pos : at;
        }
        // and nothing else: as many keys as fields (caps' keys are inside the array).
        std::size_t keys = 0;
        for (std::size_t i = out.find("\":"); i != std::string::npos; i = out.find("\":", i + 1)) {
            ++keys;
        }
        const std::size_t cap_keys = ev.text == "realize" ? std::size(sc::kCapFields) : 0;
        CHECK(keys == full.size() + cap_keys);
    }
}

TEST_CASE("schema: the enums of events.hpp follow the schema's values", "[events][schema]") {
    CHECK(to_string(Frontend::ufs) == "ufs");
    CHECK(to_string(Frontend::cqhci) == "cqhci");
    CHECK(to_string(IoError::none).empty());
    CHECK(to_string(IoError::no_prdt) == "no-prdt");
    CHECK(to_string(ProgramError::none).empty());
    CHECK(to_string(ProgramError::key_size) == "key-size");
    CHECK(to_string(WipeReason::unrealize) == "unrealize");
    CHECK(to_string(FaultKind::fatal) == "fatal");
    CHECK(to_string(IoOp::write) == "write");
    CHECK(to_string(KmOp::import_key) == "import");
    CHECK(to_string(KmOp::program) == "program");
    CHECK(to_string(KmError::none).empty());
    CHECK(to_string(KmError::blob) == "blob");
    CHECK(to_string(ProgramError::key_type) == "key-type");
    // The C++ enumerators are the log strings with '-' -> '_'.
    for (const auto& v : sc::kIoErrors) {
        std::string want(v.text);
        std::replace(want.begin(), want.end(), '-', '_');
        CHECK(want == v.id);
    }
}

// ---- docs/event-log.md ------------------------------------------------------------------------

namespace {

std::vector<std::string> cells(const std::string& row) {
    std::vector<std::string> out;
    std::string cur;
    for (std::size_t i = 1; i < row.size(); ++i) {
        if (row[i] == '|') {
            const auto b = cur.find_first_not_of(' ');
            const auto e = cur.find_last_not_of(' ');
            out.push_back(b == std::string::npos ? "" : cur.substr(b, e - b + 1));
            cur.clear();
        } else {
            cur += row[i];
        }
    }
    return out;
}

std::string unticked(const std::string& s) {
    return s.size() >= 2 && s.front() == '`' && s.back() == '`' ? s.substr(1, s.size() - 2) : s;
}

} // namespace

TEST_CASE("schema: the tables of docs/event-log.md match event-log.def", "[events][schema][docs]") {
    std::ifstream in(ICEMU_SOURCE_DIR "/docs/event-log.md");
    REQUIRE(in);
    // (event, field) -> "type presence" from the doc, and enumeration -> values.
    std::vector<std::string> doc_fields;
    std::map<std::string, std::string> doc_enums;
    std::string section, line;
    bool in_enums = false;
    while (std::getline(in, line)) {
        if (line.starts_with("## ")) {
            in_enums = line == "## Enumerations";
            section = line == "## Common fields" ? "" : "-";
        } else if (line.starts_with("### `")) {
            section = line.substr(5, line.find('`', 5) - 5);
        } else if (line.starts_with("| `")) {
            const auto c = cells(line);
            REQUIRE(c.size() >= 2);
            if (in_enums) {
                doc_enums[unticked(c[0])] = c[1];
            } else if (section != "-") {
                REQUIRE(c.size() >= 3);
                doc_fields.push_back(section + "." + unticked(c[0]) + " " + c[1] + " " + c[2]);
            }
        }
    }
    std::vector<std::string> want;
    for (const auto& f : sc::kFields) {
        want.push_back(std::string(f.event) + "." + std::string(f.name) + " " +
                       std::string(sc::type_name(f.type)) + " " +
                       (f.presence == sc::Presence::ALWAYS ? "always" : "optional"));
        if (f.type == sc::Type::CAPS) {
            for (const auto& c : sc::kCapFields) {
                want.push_back(std::string(f.event) + ".caps[]." + std::string(c.name) + " " +
                               std::string(sc::type_name(c.type)) + " always");
            }
        }
    }
    // Same rows, same order (the doc lists events in the schema's order).
    CHECK(doc_fields == want);

    std::map<std::string, std::string> want_enums;
    for (int t = 0; t <= static_cast<int>(sc::Type::KM_ERROR); ++t) {
        const auto type = static_cast<sc::Type>(t);
        if (sc::values_of(type).empty()) {
            continue;
        }
        std::string vals;
        for (const auto& v : sc::values_of(type)) {
            vals += (vals.empty() ? "" : ", ") + std::string("`\"") + std::string(v.text) + "\"`";
        }
        want_enums[std::string(sc::type_name(type))] = vals;
    }
    CHECK(doc_enums == want_enums);
}
