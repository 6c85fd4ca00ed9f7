// Event-log parser (docs/event-log.md, schema v1). Two paths fill one per-line field table:
// fast_object reads the lines the device writes (one flat object, no whitespace, plain ASCII
// strings, integers, booleans) straight from the text, and hands every other line to
// nlohmann::json's strict RFC 8259 parser (escapes, UTF-8, fractions, nested values, errors).
// parse_body then applies the schema to the table.
#include "icemu/models/events.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <set>
#include <sys/mman.h>

namespace icemu::models::events {

const std::string* Name::intern(std::string_view s) {
    if (s.empty()) {
        return &detail::kEmptyName;
    }
    // A log repeats a few names on every line: a per-thread cache answers without the lock.
    thread_local std::array<const std::string*, 64> cache{};
    const std::string*& hit = cache[(s.size() * 31 + static_cast<unsigned char>(s.front()) * 7 +
                                     static_cast<unsigned char>(s.back())) %
                                    cache.size()];
    if (hit != nullptr && *hit == s) {
        return hit;
    }
    static std::mutex mutex;
    static std::set<std::string, std::less<>> pool; // nodes never move
    const std::lock_guard lock(mutex);
    auto it = pool.find(s);
    if (it == pool.end()) {
        it = pool.emplace(s).first;
    }
    hit = &*it;
    return hit;
}

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

// ---- Values ---------------------------------------------------------------------------------

// A string_view without a default constructor that initialises it: std::string_view's zeroes its
// members, and the per-line field table below holds 41 Values, which cost ~4 % of the parse in
// callgrind. Converts to and from std::string_view.
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

// A known field's JSON value. Deliberately without default member initialisers (the two paths
// set the members its type uses), so the per-line field table costs nothing to create.
struct Value {
    enum class Type { string, number, boolean, null, object, array };
    Type type;
    View str;     ///< string: its text (in the line, or in the general path's DOM)
    bool integer; ///< number: an integer that fits in 64 bits
    bool negative;
    std::uint64_t magnitude;
    bool boolean;
    const nlohmann::json* dom; ///< array (`caps`): the general path's DOM value
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

// ---- Schema -----------------------------------------------------------------------------------

// Every distinct field name of the schema (common/icemu/event-log.def), as an enum the parser
// indexes its per-line table with. The .def lists fields per event (`slot` four times), so this
// deduplicated list is written out here and checked against it at compile time
// (kFieldsMatchSchema below): a field added to the schema and not here fails the build.
// clang-format off
#define ICEMU_EVENT_FIELDS(X)                                                                      \
    X(v)                                                                                           \
    X(seq) X(t_ns) X(ctrl) X(ev) X(slots) X(cfgptr) X(caps) X(wipe_on_disable) X(log_keys)         \
        X(frontend) X(wrapped_keys) X(raw_keys) X(on) X(cge) X(reason) X(armed) X(slot) X(capidx)  \
            X(dusize) X(key_fp) X(ok) X(error) X(key) X(wrapped) X(was_armed) X(ce) X(lun) X(op)   \
                X(opcode) X(lba) X(blocks) X(bytes) X(block_size) X(dun) X(ocs) X(status) X(queue) \
                    X(kind) X(remaining) X(master_fp)
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
    explicit Fields(std::size_t line) : line_(line) {}

    [[noreturn, gnu::noinline, gnu::cold]] void fail(const std::string& msg) const {
        throw LogError(line_, msg);
    }

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
            fail("duplicate field \"" + std::string(name(f)) + "\"");
        }
        present_ |= std::uint64_t{1} << static_cast<unsigned>(f);
    }
    static std::string_view name(F f) { return kFieldNames[static_cast<std::size_t>(f)]; }

    // The accessors run ~15 times per line: keep them small (inlined) and build error
    // messages only in the cold paths below.
    [[noreturn, gnu::cold, gnu::noinline]] void fail_field(F f, const char* what,
                                                           std::string_view tail = {}) const {
        fail(std::string(what[0] == 'm' ? "missing field \"" : "field \"") + std::string(name(f)) +
             "\"" + (what[0] == 'm' ? "" : what) + std::string(tail));
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
        if (!v.integer || (v.negative && v.magnitude != 0)) [[unlikely]] {
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
        if (!v.integer ||
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

private:
    std::size_t line_;
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
        f.fail(std::string(name) + " must be 16 lowercase hex digits");
    }
    for (char c : fp) {
        if (!kLowerHex[static_cast<unsigned char>(c)]) {
            f.fail(std::string(name) + " must be 16 lowercase hex digits");
        }
    }
}

// The index of `s` among a schema enumeration's strings, or a LogError naming `what`.
template <std::size_t N>
std::size_t schema_value(Fields& f, std::string_view s, const schema::Value (&values)[N],
                         const char* what) {
    const int i = schema::index_of(values, s);
    if (i < 0) [[unlikely]] {
        f.fail(std::string("unknown ") + what + " \"" + std::string(s) + "\"");
    }
    return static_cast<std::size_t>(i);
}

std::vector<CapEntry> parse_caps(Fields& f) {
    const Value& arr = f.need(F::caps, Value::Type::array, "an array");
    std::vector<CapEntry> caps;
    for (const auto& entry : *arr.dom) {
        if (!entry.is_object()) {
            f.fail("caps entries must be objects");
        }
        // The schema's cap fields, in CapEntry's order (idx, algid, sdusb, ks).
        constexpr auto& names = schema::kCapFields;
        static_assert(std::size(names) == 4);
        std::array<unsigned, 4> x{};
        for (std::size_t i = 0; i < std::size(names); ++i) {
            const auto v = entry.find(std::string(names[i].name));
            if (v == entry.end()) {
                f.fail("caps entry needs idx, algid, sdusb and ks");
            }
            if (!v->is_number_unsigned() || v->get<std::uint64_t>() > 0xffffffffu) {
                f.fail("caps." + std::string(names[i].name) + " must be an unsigned integer");
            }
            x[i] = v->get<unsigned>();
        }
        caps.push_back({x[0], x[1], x[2], x[3]});
    }
    return caps;
}

void parse_body(std::string_view ev, Fields& f, Body& body) {
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
        const std::string_view key_fp = f.str(F::key_fp);
        io.ocs = f.u32(F::ocs);
        const std::int64_t status = f.i64(F::status);
        if (status < -1 || status > 255) {
            f.fail("io status must be -1..255");
        }
        io.status = static_cast<int>(status);
        io.queue = f.str(F::queue);
        if (const auto e = f.opt_str(F::error)) {
            schema_value(f, *e, schema::kIoErrors, "io error");
            io.error = *e;
        }
        if (io.ce) {
            if (slot < 0 || slot > 255) {
                f.fail("io slot must be 0..255 when ce is true");
            }
            check_fp(f, key_fp, true);
        } else {
            if (slot != -1 || io.dun != 0 || io.dusize != 0 || !key_fp.empty()) {
                f.fail("io with ce=false must have slot -1, dun 0, dusize 0, key_fp \"\"");
            }
        }
        io.slot = static_cast<int>(slot);
        io.key_fp = key_fp;
        return;
    }
    if (ev == "program") {
        Program& p = body.emplace<Program>();
        p.slot = f.u32(F::slot);
        p.capidx = f.u32(F::capidx);
        p.dusize = f.u32(F::dusize);
        const std::string_view key_fp = f.str(F::key_fp);
        p.ok = f.boolean(F::ok);
        check_fp(f, key_fp,
                 !p.ok); // "" when the key layout is unknown (failed programs)
        p.key_fp = key_fp;
        const auto e = f.opt_str(F::error);
        if (p.ok && e) {
            f.fail("program with ok=true must not have an error");
        }
        if (!p.ok) {
            if (!e) {
                f.fail("program with ok=false needs an error");
            }
            schema_value(f, *e, schema::kProgramErrors, "program error");
            p.error = *e;
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
        const std::string_view master_fp = f.str(F::master_fp);
        // A command that succeeded recovered (or made) its master key; a refused one logs
        // nothing about it (docs/device.md "Hardware-wrapped keys").
        check_fp(f, master_fp, !k.ok, "master_fp");
        if (!k.ok && !master_fp.empty()) {
            f.fail("km with ok=false must have master_fp \"\"");
        }
        k.master_fp = master_fp;
        const auto e = f.opt_str(F::error);
        if (k.ok && e) {
            f.fail("km with ok=true must not have an error");
        }
        if (!k.ok) {
            if (!e) {
                f.fail("km with ok=false needs an error");
            }
            schema_value(f, *e, schema::kKmErrors, "km error");
            k.error = *e;
        }
        if (f.has(F::slot)) {
            k.slot = f.u32(F::slot);
        }
        if (k.op == KmOp::program && !k.slot) {
            f.fail("km op \"program\" needs a slot");
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
        r.caps = parse_caps(f);
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
    f.fail("unknown ev \"" + std::string(ev) + "\"");
}

// Fast path for the lines the device writes: one object, no whitespace, no escapes, only plain
// strings / integers / booleans as values. It fills `f` exactly as the general path would and
// returns true, or returns false as soon as anything else appears (the caller then clears `f` and
// runs the general path, which accepts or reports the line). So it changes speed only, never which
// lines are accepted or the values decoded.
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
                return false; // duplicate: the general path reports it
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

// The general path: nlohmann::json's strict RFC 8259 parser (the reference the tests compare the
// fast path with) for every line fast_object declines, then the same field table. Its DOM holds the
// strings the table points to.
void general_object(std::string_view line, Fields& f, nlohmann::json& dom) {
    using nlohmann::json;
    const auto mark_key = [&](int depth, json::parse_event_t event, json& key) {
        if (depth == 1 && event == json::parse_event_t::key) {
            if (const int i = field_index(key.get_ref<const std::string&>()); i >= 0) {
                f.mark(static_cast<F>(i)); // a duplicate is an error (the DOM keeps the last)
            }
        }
        return true;
    };
    try {
        dom = json::parse(line, mark_key);
    } catch (const json::parse_error& e) {
        const std::string what = e.what();
        f.fail("malformed JSON at column " + std::to_string(e.byte) + ": " +
               (what.find("; expected end of input") != std::string::npos
                    ? std::string("trailing characters after the object")
                    : what.substr(what.find(": ", what.find("column")) + 2)));
    } catch (const json::exception& e) {
        f.fail(std::string("malformed JSON: ") + e.what());
    }
    if (!dom.is_object()) {
        f.fail("malformed JSON: a line must be one object");
    }
    for (const auto& [key, v] : dom.items()) {
        const int i = field_index(key);
        if (i < 0) {
            continue; // unknown fields are ignored (the parser validated them)
        }
        Value& x = f.slot(static_cast<F>(i));
        x.integer = true;
        x.negative = false;
        switch (v.type()) {
        case json::value_t::string:
            x.type = Value::Type::string;
            x.str = v.get_ref<const std::string&>();
            break;
        case json::value_t::number_integer: {
            const auto n = v.get<std::int64_t>();
            x.type = Value::Type::number;
            x.negative = n < 0;
            x.magnitude = n < 0 ? 0 - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n);
            break;
        }
        case json::value_t::number_unsigned:
            x.type = Value::Type::number;
            x.magnitude = v.get<std::uint64_t>();
            break;
        case json::value_t::number_float: // fractions, exponents, integers beyond 64 bits
            x.type = Value::Type::number;
            x.integer = false;
            break;
        case json::value_t::boolean:
            x.type = Value::Type::boolean;
            x.boolean = v.get<bool>();
            break;
        case json::value_t::array:
            x.type = Value::Type::array;
            x.dom = &v;
            break;
        case json::value_t::object:
            x.type = Value::Type::object;
            break;
        default:
            x.type = Value::Type::null;
            break;
        }
    }
}

// parse_event into an existing Event (parse_log constructs it in place in the vector: moving
// a ~200-byte Event per line was ~3 % of the parse in callgrind).
void parse_event_into(std::string_view line, std::size_t line_no, Event& e) {
    Fields f(line_no);
    nlohmann::json dom;
    if (!fast_object(line, f)) {
        f.clear();
        general_object(line, f, dom);
    }
    const std::int64_t v = f.i64(F::v);
    if (v != kSchemaVersion) {
        f.fail("unsupported schema version " + std::to_string(v) + " (expected " +
               std::to_string(kSchemaVersion) + ")");
    }
    e.v = static_cast<int>(v);
    e.seq = f.u64(F::seq);
    e.t_ns = f.u64(F::t_ns);
    e.ctrl = f.str(F::ctrl);
    parse_body(f.str(F::ev), f, e.body);
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
            ::madvise(reinterpret_cast<void*>(first), last - first,
                      MADV_HUGEPAGE); // a hint
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
