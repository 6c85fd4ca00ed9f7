// Event-log parser (docs/event-log.md, schema v1). A small strict JSON reader specialised for
// flat one-line objects: it accepts exactly RFC 8259 JSON (checked against nlohmann::json in
// the tests) but decodes straight into the event structs without building a DOM, which keeps
// replay above 1 M events/s on one core.
#include "icemu/models/events.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <forward_list>
#include <fstream>
#include <iterator>
#include <limits>
#include <sys/mman.h>

namespace icemu::models::events {

LogError::LogError(std::size_t line, const std::string& message)
    : std::runtime_error("line " + std::to_string(line) + ": " + message), line_(line) {}

namespace {
template <typename E, std::size_t N>
std::string_view enum_text(E e, const schema::Value (&values)[N], bool has_none) {
    auto i = static_cast<std::size_t>(e);
    if (has_none) {
        if (i == 0) {
            return "";
        }
        --i;
    }
    return i < N ? values[i].text : "?";
}
} // namespace

std::string_view to_string(Frontend f) {
    return enum_text(f, schema::kFrontends, false);
}
std::string_view to_string(WipeReason r) {
    return enum_text(r, schema::kWipeReasons, false);
}
std::string_view to_string(ProgramError e) {
    return enum_text(e, schema::kProgramErrors, true);
}
std::string_view to_string(IoOp op) {
    return enum_text(op, schema::kIoOps, false);
}
std::string_view to_string(IoError e) {
    return enum_text(e, schema::kIoErrors, true);
}
std::string_view to_string(FaultKind k) {
    return enum_text(k, schema::kFaultKinds, false);
}
std::string_view to_string(KmOp op) {
    return enum_text(op, schema::kKmOps, false);
}
std::string_view to_string(KmError e) {
    return enum_text(e, schema::kKmErrors, true);
}

std::string_view event_name(const Body& body) {
    return schema::kEvents[body.index()].text;
}

namespace {

// ---- A tiny strict JSON reader ----------------------------------------------------------------

// A string_view without a default constructor that initialises it: std::string_view's zeroes
// its members, and the per-line field table below holds 37 Values (2 views each), which cost
// ~4 % of the parse in callgrind. Converts to and from std::string_view.
struct View {
    const char* p;
    std::size_t n;
    View& operator=(std::string_view s) {
        p = s.data();
        n = s.size();
        return *this;
    }
    operator std::string_view() const { return {p, n}; }
};

// A parsed JSON value. Deliberately without default member initialisers (parse_value sets the
// members its type uses), so the per-line field table costs nothing to create.
struct Value {
    enum class Type { string, number, boolean, null, object, array };
    Type type;
    View str;     ///< string: decoded text (the line itself when no escapes, or arena)
    bool integer; ///< number: no fraction / exponent
    bool negative;
    bool overflow; ///< magnitude does not fit in 64 bits
    std::uint64_t magnitude;
    bool boolean;
    View raw; ///< object / array: the raw text, re-read on demand (`caps`)
};

// Characters a JSON string may contain without further checks: not '"', not '\\', not a control
// character, ASCII.
constexpr std::array<bool, 256> make_plain_table() {
    std::array<bool, 256> t{};
    for (unsigned c = 0x20; c < 0x80; ++c) {
        t[c] = c != '"' && c != '\\';
    }
    return t;
}
constexpr std::array<bool, 256> kPlain = make_plain_table();

class Reader {
public:
    Reader(std::string_view text, std::size_t line)
        : p_(text.data()), end_(p_ + text.size()), line_(line) {}

    [[noreturn, gnu::noinline, gnu::cold]] void fail(const std::string& msg) const {
        throw LogError(line_, msg);
    }
    [[noreturn, gnu::noinline, gnu::cold]] void fail_expected(char c) const {
        fail(std::string("malformed JSON: expected '") + c + "' at column " + column());
    }

    void ws() {
        // Fast path: the device writes no whitespace between tokens.
        while (p_ < end_ && static_cast<unsigned char>(*p_) <= ' ' &&
               (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) {
            ++p_;
        }
    }
    bool at_end() {
        ws();
        return p_ == end_;
    }
    bool peek(char c) {
        ws();
        return p_ < end_ && *p_ == c;
    }
    void skip_one() { ++p_; } ///< after a successful peek()
    void expect(char c) {
        ws();
        if (p_ < end_ && *p_ == c) [[likely]] {
            ++p_;
            return;
        }
        fail_expected(c);
    }
    std::string column() const { return std::to_string(p_ - begin_() + 1); }

    void set_begin(const char* b) { begin_ptr_ = b; }

    void parse_string(Value& v) {
        expect('"');
        const char* start = p_;
        bool escaped = false;
        while (true) {
            // Fast scan over ordinary characters (the common case: short ASCII keys/values).
            while (p_ < end_ && kPlain[static_cast<unsigned char>(*p_)]) {
                ++p_;
            }
            if (p_ >= end_) {
                fail("malformed JSON: unterminated string");
            }
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                break;
            }
            if (c < 0x20) {
                fail("malformed JSON: control character in string");
            }
            if (c == '\\') {
                escaped = true;
                ++p_;
                if (p_ >= end_) {
                    fail("malformed JSON: unterminated escape");
                }
                if (*p_ == 'u') {
                    for (int i = 1; i <= 4; ++i) {
                        if (p_ + i >= end_ || !is_hex(p_[i])) {
                            fail("malformed JSON: bad \\u escape");
                        }
                    }
                    p_ += 5;
                    continue;
                }
                if (std::string_view("\"\\/bfnrt").find(*p_) == std::string_view::npos) {
                    fail("malformed JSON: bad escape");
                }
                ++p_;
                continue;
            }
            p_ = check_utf8(p_); // c >= 0x80
        }
        const std::string_view raw(start, static_cast<std::size_t>(p_ - start));
        ++p_; // closing quote
        v.type = Value::Type::string;
        if (!escaped) {
            v.str = raw;
        } else {
            arena_.push_front(unescape(raw));
            v.str = arena_.front();
        }
    }

    void parse_value(Value& v) {
        ws();
        if (p_ >= end_) {
            fail("malformed JSON: unexpected end of line");
        }
        switch (*p_) {
        case '"':
            parse_string(v);
            return;
        case '{':
        case '[': {
            const char* start = p_;
            skip_container();
            v.type = *start == '{' ? Value::Type::object : Value::Type::array;
            v.raw = std::string_view(start, static_cast<std::size_t>(p_ - start));
            return;
        }
        case 't':
            literal("true");
            v.type = Value::Type::boolean;
            v.boolean = true;
            return;
        case 'f':
            literal("false");
            v.type = Value::Type::boolean;
            v.boolean = false;
            return;
        case 'n':
            literal("null");
            v.type = Value::Type::null;
            return;
        default:
            parse_number(v);
            return;
        }
    }

private:
    const char* begin_() const { return begin_ptr_ ? begin_ptr_ : p_; }

    static bool is_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
    static unsigned hex_val(char c) {
        if (c >= '0' && c <= '9') {
            return static_cast<unsigned>(c - '0');
        }
        if (c >= 'a' && c <= 'f') {
            return static_cast<unsigned>(c - 'a' + 10);
        }
        return static_cast<unsigned>(c - 'A' + 10);
    }

    // Validates one UTF-8 sequence starting at p (first byte >= 0x80); returns the next byte.
    const char* check_utf8(const char* p) const {
        const auto b0 = static_cast<unsigned char>(*p);
        int n = 0;
        std::uint32_t cp = 0;
        if (b0 >= 0xc2 && b0 <= 0xdf) {
            n = 1;
            cp = b0 & 0x1fu;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            n = 2;
            cp = b0 & 0x0fu;
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            n = 3;
            cp = b0 & 0x07u;
        } else {
            fail("invalid UTF-8 in string");
        }
        if (end_ - p <= n) {
            fail("invalid UTF-8 in string");
        }
        for (int i = 1; i <= n; ++i) {
            const auto b = static_cast<unsigned char>(p[i]);
            if ((b & 0xc0) != 0x80) {
                fail("invalid UTF-8 in string");
            }
            cp = cp << 6 | (b & 0x3fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            fail("invalid UTF-8 in string");
        }
        return p + n + 1;
    }

    std::string unescape(std::string_view raw) const {
        std::string out;
        out.reserve(raw.size());
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] != '\\') {
                out.push_back(raw[i]);
                continue;
            }
            const char e = raw[++i];
            switch (e) {
            case 'b':
                out.push_back('\b');
                break;
            case 'f':
                out.push_back('\f');
                break;
            case 'n':
                out.push_back('\n');
                break;
            case 'r':
                out.push_back('\r');
                break;
            case 't':
                out.push_back('\t');
                break;
            case 'u': {
                std::uint32_t cp = read_u16(raw, i + 1);
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (i + 6 >= raw.size() || raw[i + 1] != '\\' || raw[i + 2] != 'u') {
                        fail("malformed JSON: unpaired surrogate");
                    }
                    const std::uint32_t lo = read_u16(raw, i + 3);
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        fail("malformed JSON: unpaired surrogate");
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    fail("malformed JSON: unpaired surrogate");
                }
                append_utf8(out, cp);
                break;
            }
            default: // " \ /
                out.push_back(e);
                break;
            }
        }
        return out;
    }

    std::uint32_t read_u16(std::string_view raw, std::size_t at) const {
        if (at + 4 > raw.size()) {
            fail("malformed JSON: bad \\u escape");
        }
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            v = v << 4 | hex_val(raw[at + k]);
        }
        return v;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
            out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
    }

    void literal(std::string_view word) {
        if (static_cast<std::size_t>(end_ - p_) < word.size() ||
            std::string_view(p_, word.size()) != word) {
            fail("malformed JSON: invalid literal at column " + column());
        }
        p_ += word.size();
    }

    void parse_number(Value& v) {
        v.type = Value::Type::number;
        v.integer = true;
        v.negative = false;
        v.overflow = false;
        v.magnitude = 0;
        if (p_ < end_ && *p_ == '-') {
            v.negative = true;
            ++p_;
        }
        if (p_ >= end_ || *p_ < '0' || *p_ > '9') {
            fail("malformed JSON: invalid value at column " + column());
        }
        if (*p_ == '0') {
            ++p_;
        } else {
            while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
                const auto d = static_cast<std::uint64_t>(*p_ - '0');
                constexpr std::uint64_t kMaxDiv10 = std::numeric_limits<std::uint64_t>::max() / 10;
                constexpr std::uint64_t kMaxMod10 = std::numeric_limits<std::uint64_t>::max() % 10;
                if (v.magnitude > kMaxDiv10 || (v.magnitude == kMaxDiv10 && d > kMaxMod10)) {
                    v.overflow = true;
                } else {
                    v.magnitude = v.magnitude * 10 + d;
                }
                ++p_;
            }
        }
        if (p_ < end_ && *p_ == '.') {
            v.integer = false;
            ++p_;
            digits();
        }
        if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
            v.integer = false;
            ++p_;
            if (p_ < end_ && (*p_ == '+' || *p_ == '-')) {
                ++p_;
            }
            digits();
        }
    }

    void digits() {
        if (p_ >= end_ || *p_ < '0' || *p_ > '9') {
            fail("malformed JSON: invalid number at column " + column());
        }
        while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
            ++p_;
        }
    }

    void skip_container() {
        const char open = *p_;
        ++p_;
        if (open == '{') {
            if (peek('}')) {
                ++p_;
                return;
            }
            while (true) {
                Value k;
                parse_string(k);
                expect(':');
                Value v;
                parse_value(v);
                if (peek(',')) {
                    ++p_;
                    continue;
                }
                expect('}');
                return;
            }
        }
        if (peek(']')) {
            ++p_;
            return;
        }
        while (true) {
            Value v;
            parse_value(v);
            if (peek(',')) {
                ++p_;
                continue;
            }
            expect(']');
            return;
        }
    }

    const char* p_;
    const char* end_;
    const char* begin_ptr_ = nullptr;
    std::size_t line_;
    std::forward_list<std::string> arena_; ///< unescaped strings (stable addresses)
};

// ---- Schema -----------------------------------------------------------------------------------

// Every distinct field name of the schema (common/icemu/event-log.def), as an enum the parser
// indexes its per-line table with. The .def lists fields per event (`slot` four times), so this
// deduplicated list is written out here and checked against it at compile time
// (kFieldsMatchSchema below): a field added to the schema and not here fails the build.
// clang-format off
#define ICEMU_EVENT_FIELDS(X)                                                                     \
    X(v) X(seq) X(t_ns) X(ctrl) X(ev)                                                             \
    X(slots) X(cfgptr) X(caps) X(wipe_on_disable) X(log_keys) X(frontend) X(wrapped_keys)         \
    X(raw_keys) X(on) X(cge) X(reason) X(armed)                                                   \
    X(slot) X(capidx) X(dusize) X(key_fp) X(ok) X(error) X(key) X(wrapped) X(was_armed)           \
    X(ce) X(lun) X(op) X(opcode) X(lba) X(blocks) X(bytes) X(block_size) X(dun) X(ocs) X(status)  \
    X(queue) X(kind) X(remaining) X(master_fp)
// clang-format on
#define ICEMU_FIELD_ENUM(name) name,
#define ICEMU_FIELD_NAME(name) #name,
enum class F : unsigned { ICEMU_EVENT_FIELDS(ICEMU_FIELD_ENUM) count_ };
constexpr std::size_t kNumFields = static_cast<std::size_t>(F::count_);
constexpr std::array<std::string_view, kNumFields> kFieldNames{
    ICEMU_EVENT_FIELDS(ICEMU_FIELD_NAME)};
#undef ICEMU_FIELD_ENUM
#undef ICEMU_FIELD_NAME
#undef ICEMU_EVENT_FIELDS

// Field lookup by a perfect hash over the schema's names (length, first, middle and last
// character; the constexpr table construction fails to compile if two names collide), then
// one comparison.
constexpr std::size_t field_hash(std::string_view n) {
    return (n.size() * 11 + static_cast<unsigned char>(n[0]) * 70u +
            static_cast<unsigned char>(n.back()) + static_cast<unsigned char>(n[n.size() / 2])) &
           127u;
}
struct FieldHash {
    std::array<signed char, 128> slot{};
    constexpr FieldHash() {
        for (auto& x : slot) {
            x = -1;
        }
        for (std::size_t i = 0; i < kNumFields; ++i) {
            const std::size_t h = field_hash(kFieldNames[i]);
            if (slot[h] >= 0) {
                throw "field_hash collision: change the hash constants";
            }
            slot[h] = static_cast<signed char>(i);
        }
    }
};
constexpr FieldHash kFieldHash{};

constexpr int field_index(std::string_view name) {
    if (name.empty()) {
        return -1;
    }
    const int i = kFieldHash.slot[field_hash(name)];
    if (i < 0) {
        return -1;
    }
    const std::string_view cand = kFieldNames[static_cast<std::size_t>(i)];
    if (cand.size() != name.size()) {
        return -1;
    }
    for (std::size_t k = 0; k < name.size(); ++k) { // short names: no memcmp call
        if (cand[k] != name[k]) {
            return -1;
        }
    }
    return i;
}

// Every name in kFieldNames is a schema field and every schema field is in kFieldNames.
constexpr bool fields_match_schema() {
    for (const auto& f : schema::kFields) {
        if (field_index(f.name) < 0) {
            return false;
        }
    }
    for (const auto name : kFieldNames) {
        bool found = false;
        for (const auto& f : schema::kFields) {
            found = found || f.name == name;
        }
        if (!found) {
            return false;
        }
    }
    return true;
}
static_assert(fields_match_schema(), "the parser's field list differs from event-log.def");

// Key prediction for the fast path. The device (and to_json_line) writes every kind's fields
// in one fixed order, so after field X the next key is almost always kNextField[X] (the `io`
// order wins where kinds differ: `io` is ~99 % of a log). The fast path compares the bytes at
// the key with that field's `"name":` and only on a mismatch scans the key and hashes it
// (field_index): in callgrind the key scan + field_index were ~30 % of the parse.
struct KeyPattern {
    std::array<char, 24> text{}; ///< `"name":`
    std::size_t size = 0;
    // The same bytes as three little-endian words and the masks of the bytes in use, so a
    // match is three loads and no memcmp call (memcmp was ~10 % of the parse after the
    // prediction went in).
    std::array<std::uint64_t, 3> word{};
    std::array<std::uint64_t, 3> mask{};

    bool matches(const char* p, const char* end) const {
        if (end - p < 24) [[unlikely]] {
            return static_cast<std::size_t>(end - p) > size &&
                   std::memcmp(p, text.data(), size) == 0;
        }
        std::uint64_t a = 0, b = 0, c = 0;
        std::memcpy(&a, p, 8);
        std::memcpy(&b, p + 8, 8);
        std::memcpy(&c, p + 16, 8);
        return (((a ^ word[0]) & mask[0]) | ((b ^ word[1]) & mask[1]) |
                ((c ^ word[2]) & mask[2])) == 0;
    }
};
struct FieldOrder {
    std::array<signed char, kNumFields> next{};
    std::array<KeyPattern, kNumFields> pattern{};
    constexpr FieldOrder() {
        for (auto& x : next) {
            x = -1;
        }
        // Each kind's order as the schema lists it (the device and to_json_line write that
        // order): the header fields, then the kind's own. `io` goes first so that its order wins.
        const auto chain = [&](std::string_view event) {
            int prev = -1;
            const auto link = [&](std::string_view name) {
                const int cur = field_index(name);
                if (prev >= 0 && next[static_cast<std::size_t>(prev)] < 0) {
                    next[static_cast<std::size_t>(prev)] = static_cast<signed char>(cur);
                }
                prev = cur;
            };
            for (const auto& f : schema::kFields) {
                if (f.event.empty() || f.event == event) {
                    link(f.name);
                }
            }
        };
        chain("io");
        for (const auto& e : schema::kEvents) {
            chain(e.text);
        }
        for (std::size_t i = 0; i < kNumFields; ++i) {
            const std::string_view name = kFieldNames[i];
            KeyPattern& k = pattern[i];
            k.text[0] = '"';
            for (std::size_t c = 0; c < name.size(); ++c) {
                k.text[c + 1] = name[c];
            }
            k.text[name.size() + 1] = '"';
            k.text[name.size() + 2] = ':';
            k.size = name.size() + 3;
            for (std::size_t c = 0; c < k.size; ++c) {
                const unsigned shift = 8 * static_cast<unsigned>(c % 8);
                k.word[c / 8] |= std::uint64_t{static_cast<unsigned char>(k.text[c])} << shift;
                k.mask[c / 8] |= std::uint64_t{0xff} << shift;
            }
        }
    }
};
constexpr FieldOrder kFieldOrder{};
static_assert(std::endian::native == std::endian::little, "KeyPattern words are little-endian");
static_assert(kFieldOrder.next[static_cast<std::size_t>(F::ev)] == static_cast<int>(F::slot));

class Fields {
public:
    explicit Fields(Reader& r) : r_(r) {}

    Value& slot(F f) { return values_[static_cast<std::size_t>(f)]; }
    /// Marks a field present; false (and no change) if it already was. For the fast path.
    bool try_mark(F f) {
        if (has(f)) {
            return false;
        }
        present_ |= std::uint64_t{1} << static_cast<unsigned>(f);
        return true;
    }
    void clear() { present_ = 0; }
    bool has(F f) const { return (present_ >> static_cast<unsigned>(f) & 1u) != 0; }
    void mark(F f) {
        if (has(f)) {
            r_.fail("duplicate field \"" + std::string(name(f)) + "\"");
        }
        present_ |= std::uint64_t{1} << static_cast<unsigned>(f);
    }
    static std::string_view name(F f) { return kFieldNames[static_cast<std::size_t>(f)]; }

    // The accessors run ~15 times per line: keep them small (inlined) and build error
    // messages only in the cold paths below.
    [[noreturn, gnu::cold, gnu::noinline]] void fail_field(F f, const char* what,
                                                           std::string_view tail = {}) const {
        r_.fail(std::string(what[0] == 'm' ? "missing field \"" : "field \"") +
                std::string(name(f)) + "\"" + (what[0] == 'm' ? "" : what) + std::string(tail));
    }
    [[gnu::always_inline]] const Value& need(F f, Value::Type t, std::string_view type_name) {
        if (!has(f)) [[unlikely]] {
            fail_field(f, "missing");
        }
        const Value& v = values_[static_cast<std::size_t>(f)];
        if (v.type != t) [[unlikely]] {
            fail_field(f, " must be ", type_name);
        }
        return v;
    }
    std::uint64_t u64(F f) {
        const Value& v = need(f, Value::Type::number, "an unsigned integer");
        if (!v.integer || v.overflow || (v.negative && v.magnitude != 0)) [[unlikely]] {
            fail_field(f, " must be an unsigned 64-bit integer");
        }
        return v.magnitude;
    }
    unsigned u32(F f) {
        const std::uint64_t x = u64(f);
        if (x > std::numeric_limits<std::uint32_t>::max()) [[unlikely]] {
            fail_field(f, " is out of range");
        }
        return static_cast<unsigned>(x);
    }
    std::int64_t i64(F f) {
        const Value& v = need(f, Value::Type::number, "an integer");
        if (!v.integer || v.overflow ||
            v.magnitude >
                (v.negative ? std::uint64_t{1} << 63
                            : static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())))
            [[unlikely]] {
            fail_field(f, " must be a 64-bit integer");
        }
        return v.negative ? static_cast<std::int64_t>(0 - v.magnitude)
                          : static_cast<std::int64_t>(v.magnitude);
    }
    bool boolean(F f) { return need(f, Value::Type::boolean, "a boolean").boolean; }
    std::string_view str(F f) { return need(f, Value::Type::string, "a string").str; }
    std::optional<bool> opt_boolean(F f) {
        if (!has(f)) {
            return std::nullopt;
        }
        return boolean(f);
    }
    std::optional<std::string_view> opt_str(F f) {
        if (!has(f)) {
            return std::nullopt;
        }
        return str(f);
    }

    Reader& reader() { return r_; }

private:
    Reader& r_;
    std::array<Value, kNumFields> values_; ///< only read when the field's `present_` bit is set
    std::uint64_t present_ = 0;
    static_assert(kNumFields <= 64);
};

constexpr std::array<bool, 256> make_lower_hex_table() {
    std::array<bool, 256> t{};
    for (unsigned c = 0; c < 256; ++c) {
        t[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
    return t;
}
constexpr std::array<bool, 256> kLowerHex = make_lower_hex_table();

void check_fp(Fields& f, std::string_view fp, bool allow_empty, const char* name = "key_fp") {
    if (fp.empty() && allow_empty) {
        return;
    }
    if (fp.size() != 16) {
        f.reader().fail(std::string(name) + " must be 16 lowercase hex digits");
    }
    for (char c : fp) {
        if (!kLowerHex[static_cast<unsigned char>(c)]) {
            f.reader().fail(std::string(name) + " must be 16 lowercase hex digits");
        }
    }
}

// The index of `s` among a schema enumeration's strings, or a LogError naming `what`.
template <std::size_t N>
std::size_t schema_value(Fields& f, std::string_view s, const schema::Value (&values)[N],
                         const char* what) {
    const int i = schema::index_of(values, s);
    if (i < 0) [[unlikely]] {
        f.reader().fail(std::string("unknown ") + what + " \"" + std::string(s) + "\"");
    }
    return static_cast<std::size_t>(i);
}

std::vector<CapEntry> parse_caps(Fields& f, std::size_t line) {
    const Value& arr = f.need(F::caps, Value::Type::array, "an array");
    std::vector<CapEntry> caps;
    Reader r(arr.raw, line);
    r.expect('[');
    if (r.peek(']')) {
        return caps;
    }
    while (true) {
        Value obj;
        r.parse_value(obj);
        if (obj.type != Value::Type::object) {
            f.reader().fail("caps entries must be objects");
        }
        Reader o(obj.raw, line);
        o.expect('{');
        CapEntry c;
        std::array<bool, 4> seen{};
        if (!o.peek('}')) {
            while (true) {
                Value k;
                o.parse_string(k);
                o.expect(':');
                Value v;
                o.parse_value(v);
                // The schema's cap fields, in CapEntry's order (idx, algid, sdusb, ks).
                constexpr auto& names = schema::kCapFields;
                static_assert(std::size(names) == 4);
                for (std::size_t i = 0; i < std::size(names); ++i) {
                    if (std::string_view(k.str) == names[i].name) {
                        if (v.type != Value::Type::number || !v.integer || v.negative ||
                            v.overflow || v.magnitude > 0xffffffffu) {
                            f.reader().fail("caps." + std::string(names[i].name) +
                                            " must be an unsigned integer");
                        }
                        const auto x = static_cast<unsigned>(v.magnitude);
                        (i == 0 ? c.idx : i == 1 ? c.algid : i == 2 ? c.sdusb : c.ks) = x;
                        seen[i] = true;
                    }
                }
                if (o.peek(',')) {
                    o.expect(',');
                    continue;
                }
                o.expect('}');
                break;
            }
        }
        for (bool s : seen) {
            if (!s) {
                f.reader().fail("caps entry needs idx, algid, sdusb and ks");
            }
        }
        caps.push_back(c);
        if (r.peek(',')) {
            r.expect(',');
            continue;
        }
        r.expect(']');
        break;
    }
    return caps;
}

void parse_body(std::string_view ev, Fields& f, std::size_t line, Body& body) {
    if (ev == "io") {
        Io& io = body.emplace<Io>();
        const std::int64_t slot = f.i64(F::slot);
        io.ce = f.boolean(F::ce);
        io.lun = f.u32(F::lun);
        io.op = static_cast<IoOp>(schema_value(f, f.str(F::op), schema::kIoOps, "io op"));
        io.opcode = f.u32(F::opcode);
        io.lba = f.u64(F::lba);
        io.blocks = f.u64(F::blocks);
        io.bytes = f.u64(F::bytes);
        io.block_size = f.u32(F::block_size);
        io.dun = f.u64(F::dun);
        io.dusize = f.u32(F::dusize);
        io.key_fp.assign(f.str(F::key_fp));
        io.ocs = f.u32(F::ocs);
        const std::int64_t status = f.i64(F::status);
        if (status < -1 || status > 255) {
            f.reader().fail("io status must be -1..255");
        }
        io.status = static_cast<int>(status);
        io.queue.assign(f.str(F::queue));
        if (const auto e = f.opt_str(F::error)) {
            schema_value(f, *e, schema::kIoErrors, "io error");
            io.error.assign(*e);
        }
        if (io.ce) {
            if (slot < 0 || slot > 255) {
                f.reader().fail("io slot must be 0..255 when ce is true");
            }
            check_fp(f, io.key_fp, true);
        } else {
            if (slot != -1 || io.dun != 0 || io.dusize != 0 || !io.key_fp.empty()) {
                f.reader().fail("io with ce=false must have slot -1, dun 0, dusize 0, key_fp \"\"");
            }
        }
        io.slot = static_cast<int>(slot);
        return;
    }
    if (ev == "program") {
        Program& p = body.emplace<Program>();
        p.slot = f.u32(F::slot);
        p.capidx = f.u32(F::capidx);
        p.dusize = f.u32(F::dusize);
        p.key_fp.assign(f.str(F::key_fp));
        p.ok = f.boolean(F::ok);
        check_fp(f, p.key_fp, !p.ok); // "" when the key layout is unknown (failed programs)
        const auto e = f.opt_str(F::error);
        if (p.ok && e) {
            f.reader().fail("program with ok=true must not have an error");
        }
        if (!p.ok) {
            if (!e) {
                f.reader().fail("program with ok=false needs an error");
            }
            schema_value(f, *e, schema::kProgramErrors, "program error");
            p.error = std::string(*e);
        }
        if (const auto k = f.opt_str(F::key)) {
            p.key = std::string(*k);
        }
        p.wrapped = f.opt_boolean(F::wrapped);
        return;
    }
    if (ev == "km") {
        Km& k = body.emplace<Km>();
        k.op = static_cast<KmOp>(schema_value(f, f.str(F::op), schema::kKmOps, "km op"));
        k.ok = f.boolean(F::ok);
        k.master_fp.assign(f.str(F::master_fp));
        // A command that succeeded recovered (or made) its master key; a refused one logs
        // nothing about it (docs/device.md "Hardware-wrapped keys").
        check_fp(f, k.master_fp, !k.ok, "master_fp");
        if (!k.ok && !k.master_fp.empty()) {
            f.reader().fail("km with ok=false must have master_fp \"\"");
        }
        const auto e = f.opt_str(F::error);
        if (k.ok && e) {
            f.reader().fail("km with ok=true must not have an error");
        }
        if (!k.ok) {
            if (!e) {
                f.reader().fail("km with ok=false needs an error");
            }
            schema_value(f, *e, schema::kKmErrors, "km error");
            k.error = std::string(*e);
        }
        if (f.has(F::slot)) {
            k.slot = f.u32(F::slot);
        }
        if (k.op == KmOp::program && !k.slot) {
            f.reader().fail("km op \"program\" needs a slot");
        }
        return;
    }
    if (ev == "evict") {
        body = Evict{f.u32(F::slot), f.boolean(F::was_armed)};
        return;
    }
    if (ev == "disarm") {
        body = Disarm{f.u32(F::slot)};
        return;
    }
    if (ev == "enable") {
        body = Enable{f.boolean(F::on), f.boolean(F::cge)};
        return;
    }
    if (ev == "wipe") {
        Wipe w;
        w.reason = static_cast<WipeReason>(
            schema_value(f, f.str(F::reason), schema::kWipeReasons, "wipe reason"));
        w.armed = f.u32(F::armed);
        body = w;
        return;
    }
    if (ev == "fault") {
        Fault x;
        x.kind = static_cast<FaultKind>(
            schema_value(f, f.str(F::kind), schema::kFaultKinds, "fault kind"));
        x.remaining = f.u32(F::remaining);
        body = x;
        return;
    }
    if (ev == "realize") {
        Realize r;
        r.slots = f.u32(F::slots);
        r.cfgptr = f.u32(F::cfgptr);
        r.caps = parse_caps(f, line);
        r.wipe_on_disable = f.boolean(F::wipe_on_disable);
        r.log_keys = f.boolean(F::log_keys);
        const auto fe = f.str(F::frontend);
        schema_value(f, fe, schema::kFrontends, "frontend");
        r.frontend = std::string(fe);
        r.wrapped_keys = f.opt_boolean(F::wrapped_keys);
        r.raw_keys = f.opt_boolean(F::raw_keys);
        body = std::move(r);
        return;
    }
    f.reader().fail("unknown ev \"" + std::string(ev) + "\"");
}

} // namespace

// Fast path for the lines the device writes: one object, no whitespace, no escapes, only
// plain strings / integers / booleans as values. It fills `f` exactly as the general reader
// would and returns true, or returns false as soon as anything else appears (the caller then
// clears `f` and runs the general reader, which accepts or reports the line as before). So it
// changes speed only, never which lines are accepted or the values decoded.
bool fast_object(std::string_view line, Fields& f) {
    const char* p = line.data();
    const char* const end = p + line.size();
    if (p == end || *p != '{') {
        return false;
    }
    ++p;
    int predicted = static_cast<int>(F::v);
    while (true) {
        if (p == end || *p != '"') {
            return false;
        }
        int idx = -1;
        bool matched = false;
        if (predicted >= 0) {
            const KeyPattern& k = kFieldOrder.pattern[static_cast<std::size_t>(predicted)];
            if (k.matches(p, end)) {
                idx = predicted;
                matched = true;
                p += k.size;
            }
        }
        if (!matched) {
            const char* k = ++p;
            while (p < end && kPlain[static_cast<unsigned char>(*p)]) {
                ++p;
            }
            if (p >= end || *p != '"') {
                return false;
            }
            const std::string_view key(k, static_cast<std::size_t>(p - k));
            ++p;
            if (p == end || *p != ':') {
                return false;
            }
            ++p;
            if (p == end) {
                return false;
            }
            idx = field_index(key);
        }
        Value tmp;
        Value* v = &tmp;
        if (idx >= 0) {
            predicted = kFieldOrder.next[static_cast<std::size_t>(idx)];
            if (!f.try_mark(static_cast<F>(idx))) {
                return false; // duplicate: the general reader reports it
            }
            v = &f.slot(static_cast<F>(idx));
        }
        const char c = *p;
        if (c == '"') {
            const char* s = ++p;
            while (p < end && kPlain[static_cast<unsigned char>(*p)]) {
                ++p;
            }
            if (p >= end || *p != '"') {
                return false;
            }
            v->type = Value::Type::string;
            v->str = std::string_view(s, static_cast<std::size_t>(p - s));
            ++p;
        } else if ((c >= '0' && c <= '9') || c == '-') {
            v->type = Value::Type::number;
            v->integer = true;
            v->overflow = false;
            v->negative = c == '-';
            if (v->negative) {
                ++p;
            }
            const char* d = p;
            std::uint64_t m = 0;
            while (p < end && *p >= '0' && *p <= '9') {
                m = m * 10 + static_cast<std::uint64_t>(*p - '0');
                ++p;
            }
            const auto n = p - d;
            if (n == 0 || n > 19 || (*d == '0' && n > 1) ||
                (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) {
                return false; // fractions, exponents, 20+ digits, leading zeros: general path
            }
            v->magnitude = m;
        } else if (c == 't' && end - p >= 4 && std::string_view(p, 4) == "true") {
            v->type = Value::Type::boolean;
            v->boolean = true;
            p += 4;
        } else if (c == 'f' && end - p >= 5 && std::string_view(p, 5) == "false") {
            v->type = Value::Type::boolean;
            v->boolean = false;
            p += 5;
        } else {
            return false; // null, objects, arrays (realize caps), whitespace
        }
        if (p == end) {
            return false;
        }
        if (*p == ',') {
            ++p;
            continue;
        }
        return *p == '}' && p + 1 == end;
    }
}

namespace {

// parse_event into an existing Event (parse_log constructs it in place in the vector: moving
// a ~200-byte Event per line was ~3 % of the parse in callgrind).
void parse_event_into(std::string_view line, std::size_t line_no, Event& e) {
    Reader r(line, line_no);
    r.set_begin(line.data());
    Fields f(r);
    const bool fast = fast_object(line, f);
    if (!fast) {
        f.clear();
        r.expect('{');
    }
    if (!fast && !r.peek('}')) {
        Value key;
        while (true) {
            r.parse_string(key);
            r.expect(':');
            const int idx = field_index(std::string_view(key.str));
            if (idx >= 0) {
                const auto fid = static_cast<F>(idx);
                f.mark(fid);
                r.parse_value(f.slot(fid));
            } else {
                Value ignored; // unknown fields are ignored (but must be valid JSON)
                r.parse_value(ignored);
            }
            if (r.peek(',')) {
                r.skip_one();
                continue;
            }
            r.expect('}');
            break;
        }
    }
    if (!fast && !r.at_end()) {
        r.fail("malformed JSON: trailing characters after the object");
    }
    const std::int64_t v = f.i64(F::v);
    if (v != kSchemaVersion) {
        r.fail("unsupported schema version " + std::to_string(v) + " (expected " +
               std::to_string(kSchemaVersion) + ")");
    }
    e.v = static_cast<int>(v);
    e.seq = f.u64(F::seq);
    e.t_ns = f.u64(F::t_ns);
    e.ctrl.assign(f.str(F::ctrl));
    parse_body(f.str(F::ev), f, line_no, e.body);
}

} // namespace

Event parse_event(std::string_view line, std::size_t line_no) {
    Event e;
    parse_event_into(line, line_no, e);
    return e;
}

LogReader::LogReader(std::istream& in) : in_(in) {}

namespace {

// Cross-line rules: seq 0, 1, 2, ... without gaps; `realize` first and only first; one ctrl.
void check_sequence(const Event& e, std::size_t line, std::uint64_t& next_seq, std::string& ctrl) {
    if (e.seq != next_seq) {
        throw LogError(line, "seq gap: expected " + std::to_string(next_seq) + ", got " +
                                 std::to_string(e.seq));
    }
    if (next_seq == 0) {
        if (!std::holds_alternative<Realize>(e.body)) {
            throw LogError(line, "the first event must be \"realize\", got \"" +
                                     std::string(event_name(e.body)) + "\"");
        }
        ctrl = e.ctrl;
    } else if (e.ctrl != ctrl) {
        throw LogError(line, "ctrl \"" + e.ctrl + "\" differs from the log's \"" + ctrl + "\"");
    } else if (std::holds_alternative<Realize>(e.body)) {
        throw LogError(line, "\"realize\" may only be the first event");
    }
    ++next_seq;
}

} // namespace

std::optional<Event> LogReader::next() {
    if (!std::getline(in_, buf_)) {
        return std::nullopt;
    }
    ++line_;
    if (!buf_.empty() && buf_.back() == '\r') {
        buf_.pop_back();
    }
    if (buf_.empty()) {
        throw LogError(line_, "empty line");
    }
    Event e = parse_event(buf_, line_);
    check_sequence(e, line_, next_seq_, ctrl_);
    return e;
}

std::vector<Event> read_log(std::istream& in) {
    LogReader r(in);
    std::vector<Event> out;
    while (auto e = r.next()) {
        out.push_back(std::move(*e));
    }
    return out;
}

std::vector<Event> parse_log(std::string_view text) {
    std::vector<Event> out;
    // One event per line: reserving avoids moving every Event on each regrowth.
    std::size_t lines = 1;
    for (const char *p = text.data(), *e = p + text.size();
         (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(e - p))));
         ++p) {
        ++lines;
    }
    out.reserve(lines);
#ifdef MADV_HUGEPAGE
    // A 1 M-event log needs ~240 MB of Events. With 4 KiB pages the first touch of each page
    // faults: perf showed clear_page/exc_page_fault at ~20 % of the parse's CPU time (the
    // machine's THP mode is "madvise"). Ask for huge pages for the (page-aligned) bulk.
    if (const std::size_t bytes = lines * sizeof(Event); bytes >= (std::size_t{8} << 20)) {
        constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
        const auto begin = reinterpret_cast<std::uintptr_t>(out.data());
        const std::uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
        const std::uintptr_t last = (begin + bytes) & ~(kHuge - 1);
        if (last > first) {
            ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE); // a hint
        }
    }
#endif
    std::uint64_t next_seq = 0;
    std::string ctrl;
    std::size_t line = 0;
    while (!text.empty()) {
        ++line;
        const auto nl = text.find('\n');
        std::string_view l = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (!l.empty() && l.back() == '\r') {
            l.remove_suffix(1);
        }
        if (l.empty()) {
            throw LogError(line, "empty line");
        }
        parse_event_into(l, line, out.emplace_back());
        check_sequence(out.back(), line, next_seq, ctrl);
    }
    return out;
}

std::vector<Event> read_log_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot open event log " + path);
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parse_log(text);
}

void Tally::add(const Event& e) {
    if (const auto* p = std::get_if<Program>(&e.body)) {
        ++programs;
        program_errors += !p->ok;
    } else if (std::holds_alternative<Evict>(e.body)) {
        ++evicts;
    } else if (std::holds_alternative<Wipe>(e.body)) {
        ++wipes;
    } else if (std::holds_alternative<Fault>(e.body)) {
        ++faults;
    } else if (const auto* io = std::get_if<Io>(&e.body)) {
        if (!io->ce)
            ++plain_ios;
        else if (io->op == IoOp::read)
            ++ce_reads;
        else
            ++ce_writes;
        refused += io->ce && (io->ocs != 0 || !io->error.empty());
    }
}

// ---- Serialisation ----------------------------------------------------------------------------

namespace {

void put_str(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20) {
            out += "\\u00";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
}

struct Writer {
    std::string out;
    bool first = true;
    void key(std::string_view k) {
        out += first ? "" : ",";
        first = false;
        put_str(out, k);
        out.push_back(':');
    }
    void u(std::string_view k, std::uint64_t v) {
        key(k);
        char buf[24];
        const auto res = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, res.ptr);
    }
    void i(std::string_view k, std::int64_t v) {
        key(k);
        char buf[24];
        const auto res = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, res.ptr);
    }
    void b(std::string_view k, bool v) {
        key(k);
        out += v ? "true" : "false";
    }
    void s(std::string_view k, std::string_view v) {
        key(k);
        put_str(out, v);
    }
};

} // namespace

std::string to_json_line(const Event& e) {
    Writer w;
    w.out.reserve(256);
    w.out.push_back('{');
    w.i("v", e.v);
    w.u("seq", e.seq);
    w.u("t_ns", e.t_ns);
    w.s("ctrl", e.ctrl);
    w.s("ev", event_name(e.body));
    std::visit(
        [&](const auto& b) {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, Realize>) {
                w.u("slots", b.slots);
                w.u("cfgptr", b.cfgptr);
                w.key("caps");
                w.out.push_back('[');
                for (std::size_t i = 0; i < b.caps.size(); ++i) {
                    w.out += i ? ",{" : "{";
                    Writer c;
                    c.u("idx", b.caps[i].idx);
                    c.u("algid", b.caps[i].algid);
                    c.u("sdusb", b.caps[i].sdusb);
                    c.u("ks", b.caps[i].ks);
                    w.out += c.out;
                    w.out.push_back('}');
                }
                w.out.push_back(']');
                w.b("wipe_on_disable", b.wipe_on_disable);
                w.b("log_keys", b.log_keys);
                w.s("frontend", b.frontend);
                if (b.wrapped_keys) {
                    w.b("wrapped_keys", *b.wrapped_keys);
                }
                if (b.raw_keys) {
                    w.b("raw_keys", *b.raw_keys);
                }
            } else if constexpr (std::is_same_v<T, Enable>) {
                w.b("on", b.on);
                w.b("cge", b.cge);
            } else if constexpr (std::is_same_v<T, Wipe>) {
                w.s("reason", to_string(b.reason));
                w.u("armed", b.armed);
            } else if constexpr (std::is_same_v<T, Program>) {
                w.u("slot", b.slot);
                w.u("capidx", b.capidx);
                w.u("dusize", b.dusize);
                w.s("key_fp", b.key_fp);
                w.b("ok", b.ok);
                if (!b.ok) {
                    w.s("error", b.error);
                }
                if (b.key) {
                    w.s("key", *b.key);
                }
                if (b.wrapped) {
                    w.b("wrapped", *b.wrapped);
                }
            } else if constexpr (std::is_same_v<T, Evict>) {
                w.u("slot", b.slot);
                w.b("was_armed", b.was_armed);
            } else if constexpr (std::is_same_v<T, Disarm>) {
                w.u("slot", b.slot);
            } else if constexpr (std::is_same_v<T, Io>) {
                w.i("slot", b.slot);
                w.b("ce", b.ce);
                w.u("lun", b.lun);
                w.s("op", to_string(b.op));
                w.u("opcode", b.opcode);
                w.u("lba", b.lba);
                w.u("blocks", b.blocks);
                w.u("bytes", b.bytes);
                w.u("block_size", b.block_size);
                w.u("dun", b.dun);
                w.u("dusize", b.dusize);
                w.s("key_fp", b.key_fp);
                w.u("ocs", b.ocs);
                w.i("status", b.status);
                w.s("queue", b.queue);
                if (!b.error.empty()) {
                    w.s("error", b.error);
                }
            } else if constexpr (std::is_same_v<T, Fault>) {
                w.s("kind", to_string(b.kind));
                w.u("remaining", b.remaining);
            } else if constexpr (std::is_same_v<T, Km>) {
                w.s("op", to_string(b.op));
                w.b("ok", b.ok);
                if (!b.ok) {
                    w.s("error", b.error);
                }
                if (b.slot) {
                    w.u("slot", *b.slot);
                }
                w.s("master_fp", b.master_fp);
            }
        },
        e.body);
    w.out.push_back('}');
    return std::move(w.out);
}

} // namespace icemu::models::events
