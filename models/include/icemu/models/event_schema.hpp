// event_schema: the event log's schema (common/icemu/event-log.def) as constexpr tables.
//
// The .def is the one definition of the event types, their fields and every enumerated value;
// the QEMU device writes its log strings from a byte-identical copy of it. This header turns it
// into tables for the parser (events.cpp: which values it accepts), the enums of events.hpp, and
// the tests that hold the parser, the serialiser and docs/event-log.md to it. It is interface
// data shared with the device, not device code: the models' rules stay their own.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

namespace icemu::models::events::schema {

/// Value types of the fields (see the .def's header comment).
enum class Type {
    INT,
    UINT,
    U64,
    BOOL,
    STRING,
    FP,
    HEX,
    CAPS,
    EVENT,
    FRONTEND,
    WIPE_REASON,
    PROGRAM_ERROR,
    IO_OP,
    IO_ERROR,
    FAULT_KIND,
    KM_OP,
    KM_ERROR,
};

enum class Presence { ALWAYS, OPTIONAL };

struct Field {
    std::string_view event; ///< "" for the header fields of every line
    std::string_view name;
    Type type;
    Presence presence;
};

struct Value {
    std::string_view id;   ///< the C++ enumerator
    std::string_view text; ///< the string in the log
};

// The X-macro helpers expand to brace-initialisers; trailing commas are fine in arrays.
#define ICEMU_SCHEMA_VALUE(ID, id, str) Value{#id, str},

inline constexpr Value kEvents[] = {
#define ICEMU_EVENT ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};

inline constexpr Field kFields[] = {
#define ICEMU_HEADER_FIELD(name, type) Field{"", #name, Type::type, Presence::ALWAYS},
#define ICEMU_FIELD(event, name, type, presence)                                                   \
    Field{#event, #name, Type::type, Presence::presence},
#include "icemu/event-log.def"
};

inline constexpr Field kCapFields[] = {
#define ICEMU_CAP_FIELD(name, type) Field{"caps", #name, Type::type, Presence::ALWAYS},
#include "icemu/event-log.def"
};

inline constexpr Value kFrontends[] = {
#define ICEMU_FRONTEND ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};
inline constexpr Value kWipeReasons[] = {
#define ICEMU_WIPE_REASON ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};
inline constexpr Value kProgramErrors[] = {
#define ICEMU_PROGRAM_ERROR ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};
inline constexpr Value kIoOps[] = {
#define ICEMU_IO_OP ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};
inline constexpr Value kIoErrors[] = {
#define ICEMU_IO_ERROR ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};
inline constexpr Value kFaultKinds[] = {
#define ICEMU_FAULT_KIND ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};
inline constexpr Value kKmOps[] = {
#define ICEMU_KM_OP ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};
inline constexpr Value kKmErrors[] = {
#define ICEMU_KM_ERROR ICEMU_SCHEMA_VALUE
#include "icemu/event-log.def"
};

#undef ICEMU_SCHEMA_VALUE

/// The name of a type as docs/event-log.md writes it ("uint", "io_error", ...).
constexpr std::string_view type_name(Type t) {
    constexpr std::array<std::string_view, 17> names{
        "int",   "uint",     "u64",        "bool",     "string",      "fp",
        "hex",   "caps",     "event",      "frontend", "wipe_reason", "program_error",
        "io_op", "io_error", "fault_kind", "km_op",    "km_error"};
    return names[static_cast<std::size_t>(t)];
}

/// The values of an enumerated type; empty for the other types.
constexpr std::span<const Value> values_of(Type t) {
    switch (t) {
    case Type::EVENT:
        return kEvents;
    case Type::FRONTEND:
        return kFrontends;
    case Type::WIPE_REASON:
        return kWipeReasons;
    case Type::PROGRAM_ERROR:
        return kProgramErrors;
    case Type::IO_OP:
        return kIoOps;
    case Type::IO_ERROR:
        return kIoErrors;
    case Type::FAULT_KIND:
        return kFaultKinds;
    case Type::KM_OP:
        return kKmOps;
    case Type::KM_ERROR:
        return kKmErrors;
    default:
        return {};
    }
}

/// The index of `text` in an enumeration, or -1.
constexpr int index_of(std::span<const Value> values, std::string_view text) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i].text == text) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

} // namespace icemu::models::events::schema
