// events: the crypto event log of an icemu controller (docs/event-log.md, schema version 1).
//
// Models: one typed struct per `ev` kind, with exactly the fields of docs/event-log.md, and a
// parser/validator for the JSON-lines file. The ufshci_crypto model produces the same structs
// (without the common header) as its predictions, so a checker compares like with like.
//
// Invariants enforced by the parser (docs/event-log.md "Common fields"):
//   - every line is one JSON object with `v` == 1, `seq`, `t_ns`, `ctrl`, `ev`;
//   - `seq` is 0, 1, 2, ... without gaps (per controller, i.e. per log);
//   - the first event is `realize`; `ev` values outside the schema are errors;
//   - integers are exact: 64-bit fields (`dun`, `lba`, ...) are parsed as unsigned 64-bit and a
//     negative, fractional or out-of-range number is an error; unknown fields are ignored.
// Errors are reported as LogError with the 1-based line number and a message.
//
// The event types, field names and enumerated values come from the schema definition
// (common/icemu/event-log.def, see event_schema.hpp); the enums below are generated from it.
#pragma once

#include "icemu/models/event_schema.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <istream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace icemu::models::events {

inline constexpr int kSchemaVersion = 1;

namespace detail {
inline const std::string kEmptyName;
} // namespace detail

/// A string of the log that takes few distinct values (a controller's id, an io's queue, a key
/// fingerprint, an error cause), interned: an event holds one pointer, not a std::string (32
/// bytes, and a heap allocation for a 16-digit fingerprint), and equal names are one address.
/// Behaves as a const std::string. The interned strings live until the process exits.
class Name {
public:
    Name() = default;
    Name(std::string_view s) : s_(intern(s)) {}
    Name(const std::string& s) : s_(intern(s)) {}
    Name(const char* s) : s_(intern(s)) {}
    const std::string& str() const { return *s_; }
    operator const std::string&() const { return *s_; }
    operator std::string_view() const { return *s_; }
    bool empty() const { return s_->empty(); }
    std::size_t size() const { return s_->size(); }
    void clear() { s_ = &detail::kEmptyName; }

    friend bool operator==(const Name& a, const Name& b) { return a.s_ == b.s_; }
    friend bool operator==(const Name& a, std::string_view b) { return *a.s_ == b; }
    friend bool operator==(const Name& a, const std::string& b) { return *a.s_ == b; }
    friend bool operator==(const Name& a, const char* b) { return *a.s_ == b; }
    friend std::string operator+(const std::string& a, const Name& b) { return a + *b.s_; }
    friend std::string operator+(const char* a, const Name& b) { return a + *b.s_; }
    friend std::string operator+(const Name& a, const std::string& b) { return *a.s_ + b; }
    friend std::string operator+(const Name& a, const char* b) { return *a.s_ + b; }
    friend std::ostream& operator<<(std::ostream& o, const Name& n) { return o << *n.s_; }

private:
    static const std::string* intern(std::string_view s);
    const std::string* s_ = &detail::kEmptyName;
};

struct CapEntry {
    unsigned idx = 0;
    unsigned algid = 0;
    unsigned sdusb = 0;
    unsigned ks = 0;
    friend bool operator==(const CapEntry&, const CapEntry&) = default;
};

enum class Frontend {
#define ICEMU_FRONTEND(ID, id, str) id,
#include "icemu/event-log.def"
};

struct Realize {
    unsigned slots = 0;
    unsigned cfgptr = 0;
    std::vector<CapEntry> caps;
    bool wipe_on_disable = false;
    bool log_keys = false;
    std::string frontend;
    /// `crypto-wrapped-keys` (the hardware key manager); absent in logs of devices without it.
    std::optional<bool> wrapped_keys;
    /// With the key manager: whether x-CRYPTOCFG still accepts raw keys (`crypto-raw-keys`).
    std::optional<bool> raw_keys;
    /// Raw keys are accepted (true when the log does not say otherwise).
    bool accepts_raw_keys() const { return raw_keys.value_or(true); }
    friend bool operator==(const Realize&, const Realize&) = default;
};

struct Enable {
    bool on = false;
    bool cge = false;
    friend bool operator==(const Enable&, const Enable&) = default;
};

enum class WipeReason {
#define ICEMU_WIPE_REASON(ID, id, str) id,
#include "icemu/event-log.def"
};

struct Wipe {
    WipeReason reason = WipeReason::disable;
    unsigned armed = 0;
    friend bool operator==(const Wipe&, const Wipe&) = default;
};

enum class ProgramError {
    none, ///< "" (no error)
#define ICEMU_PROGRAM_ERROR(ID, id, str) id,
#include "icemu/event-log.def"
};

struct Program {
    unsigned slot = 0;
    unsigned capidx = 0;
    unsigned dusize = 0; ///< bytes; 0 if DUSIZE was not one-hot
    Name key_fp;
    bool ok = false;
    Name error;                     ///< "" when ok; else a ProgramError string
    std::optional<std::string> key; ///< hex, only with crypto-log-keys=on
    /// true: armed by the key manager's PROGRAM from a hardware-wrapped key (key_fp is the
    /// derived inline key's); absent or false: a raw key written to x-CRYPTOCFG.
    std::optional<bool> wrapped;
    bool is_wrapped() const { return wrapped.value_or(false); }
    friend bool operator==(const Program&, const Program&) = default;
};

struct Evict {
    unsigned slot = 0;
    bool was_armed = false;
    friend bool operator==(const Evict&, const Evict&) = default;
};

struct Disarm {
    unsigned slot = 0;
    friend bool operator==(const Disarm&, const Disarm&) = default;
};

enum class IoOp {
#define ICEMU_IO_OP(ID, id, str) id,
#include "icemu/event-log.def"
};

enum class IoError {
    none, ///< "" (no error)
#define ICEMU_IO_ERROR(ID, id, str) id,
#include "icemu/event-log.def"
};

struct Io {
    int slot = -1; ///< CCI, -1 when CE=0
    bool ce = false;
    unsigned lun = 0;
    IoOp op = IoOp::read;
    unsigned opcode = 0;
    std::uint64_t lba = 0;
    std::uint64_t blocks = 0;
    std::uint64_t bytes = 0;
    unsigned block_size = 0;
    std::uint64_t dun = 0;
    unsigned dusize = 0;
    Name key_fp;
    unsigned ocs = 0;
    int status = 0; ///< SCSI status; -1 when never issued to the LU or cancelled
    Name queue;
    Name error; ///< "" when absent; else an IoError string
    friend bool operator==(const Io&, const Io&) = default;
};

enum class FaultKind {
#define ICEMU_FAULT_KIND(ID, id, str) id,
#include "icemu/event-log.def"
};

struct Fault {
    FaultKind kind = FaultKind::ocs;
    unsigned remaining = 0;
    friend bool operator==(const Fault&, const Fault&) = default;
};

enum class KmOp {
#define ICEMU_KM_OP(ID, id, str) id,
#include "icemu/event-log.def"
};

enum class KmError {
    none, ///< "" (no error)
#define ICEMU_KM_ERROR(ID, id, str) id,
#include "icemu/event-log.def"
};

/// A command of the hardware key manager (docs/device.md "Hardware-wrapped keys").
struct Km {
    KmOp op = KmOp::import_key;
    bool ok = false;
    Name error;                   ///< "" when ok; else a KmError string
    std::optional<unsigned> slot; ///< only for PROGRAM
    Name master_fp;               ///< fingerprint of the master key; "" when not recovered
    friend bool operator==(const Km&, const Km&) = default;
};

/// One alternative per schema event type, in the schema's order (event_name indexes it).
using Body = std::variant<Realize, Enable, Wipe, Program, Evict, Disarm, Io, Fault, Km>;
static_assert(std::variant_size_v<Body> == std::size(schema::kEvents));

struct Event {
    int v = kSchemaVersion;
    std::uint64_t seq = 0;
    std::uint64_t t_ns = 0;
    Name ctrl;
    Body body;
};

/// The `ev` name of a body alternative ("realize", "enable", ...).
std::string_view event_name(const Body& body);
// The log strings of the enumerated values (the schema's); "" for ProgramError/IoError::none.
std::string_view to_string(Frontend f);
std::string_view to_string(WipeReason r);
std::string_view to_string(ProgramError e);
std::string_view to_string(IoOp op);
std::string_view to_string(IoError e);
std::string_view to_string(FaultKind k);
std::string_view to_string(KmOp op);
std::string_view to_string(KmError e);

/// A malformed or invalid log line.
class LogError : public std::runtime_error {
public:
    LogError(std::size_t line, const std::string& message);
    std::size_t line() const { return line_; }

private:
    std::size_t line_;
};

/// Parses one line (no trailing newline needed). `line_no` is used in error messages only.
/// Validates the line on its own (fields, types, version); sequence checks need LogReader.
Event parse_event(std::string_view line, std::size_t line_no = 1);

/// Streams a log, validating each line and the cross-line rules (seq without gaps starting at
/// 0, `realize` first, one `ctrl` per log). Empty lines are errors, except a final newline.
class LogReader {
public:
    explicit LogReader(std::istream& in);
    /// The next event, or nullopt at end of input. Throws LogError.
    std::optional<Event> next();
    std::size_t line() const { return line_; }

private:
    std::istream& in_;
    std::string buf_;
    std::size_t line_ = 0;
    std::uint64_t next_seq_ = 0;
    std::string ctrl_;
};

/// Reads a whole log. Throws LogError on the first bad line.
std::vector<Event> read_log(std::istream& in);
/// The same rules over a log held in memory (no per-line copies; the fast path).
std::vector<Event> parse_log(std::string_view text);
/// Reads a file into memory and parse_log()s it.
std::vector<Event> read_log_file(const std::string& path);

/// What a log says happened, counted: key programs (and failed ones), evictions (Linux's
/// eviction ends in an `evict` event, whatever `was_armed` says), wipes, injected faults,
/// crypto reads and writes, CE=0 I/O, and crypto I/O the device refused (OCS or io error).
struct Tally {
    std::uint64_t programs = 0, program_errors = 0, evicts = 0, wipes = 0, faults = 0;
    std::uint64_t ce_reads = 0, ce_writes = 0, plain_ios = 0, refused = 0;
    std::uint64_t ce_ios() const { return ce_reads + ce_writes; }
    void add(const Event& e);
};

/// Serialises an event as one JSON line (no newline), in the schema's field names. Used by
/// tests and log generators; `parse_event(to_json_line(e))` round-trips.
std::string to_json_line(const Event& e);

} // namespace icemu::models::events
