// The guest-op vocabulary, defined once: every op a scenario step may name. The guest program
// answers them (guest-tests/guest/main.cpp: a switch over Op, so an op added here without a
// handler does not compile), the runner accepts them in scenarios (guest-tests/runner/
// scenario.cpp) and icemu-check reads them back from run.json (models/checker: its fact
// handlers are keyed by Op). Host ops are carried out by the runner and never reach the guest.
// Header-only, no dependencies: the static guest binary and the host programs both include it.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

// X(name): one guest op; its wire name is the identifier's spelling.
#define ICEMU_GUEST_OPS(X)                                                                         \
    X(sysinfo)                                                                                     \
    X(disks)                                                                                       \
    X(mkfs)                                                                                        \
    X(mount)                                                                                       \
    X(umount)                                                                                      \
    X(sync)                                                                                        \
    X(drop_caches)                                                                                 \
    X(suspend)                                                                                     \
    X(runtime_pm)                                                                                  \
    X(kmsg)                                                                                        \
    X(dm_create)                                                                                   \
    X(dm_load)                                                                                     \
    X(dm_resume)                                                                                   \
    X(dm_suspend)                                                                                  \
    X(dm_remove)                                                                                   \
    X(dm_table)                                                                                    \
    X(dm_clear)                                                                                    \
    X(dm_message)                                                                                  \
    X(add_key)                                                                                     \
    X(remove_key)                                                                                  \
    X(key_status)                                                                                  \
    X(set_policy)                                                                                  \
    X(get_policy)                                                                                  \
    X(import_wrapped_key)                                                                          \
    X(generate_wrapped_key)                                                                        \
    X(prepare_wrapped_key)                                                                         \
    X(add_wrapped_key)                                                                             \
    X(write_file)                                                                                  \
    X(read_file)                                                                                   \
    X(file_info)                                                                                   \
    X(remove_file)                                                                                 \
    X(write_files)                                                                                 \
    X(read_files)                                                                                  \
    X(write_dev)                                                                                   \
    X(read_dev)                                                                                    \
    X(bench_io)                                                                                    \
    X(poweroff)

// X(name): one host op (the runner's own action between guest steps).
#define ICEMU_HOST_OPS(X) X(inject) X(reboot)

namespace icemu::guest_ops {

enum class Op {
#define ICEMU_OP_ENUM(n) n,
    ICEMU_GUEST_OPS(ICEMU_OP_ENUM)
#undef ICEMU_OP_ENUM
};

inline constexpr std::array kGuestOps = {
#define ICEMU_OP_NAME(n) std::string_view(#n),
    ICEMU_GUEST_OPS(ICEMU_OP_NAME)
#undef ICEMU_OP_NAME
};

inline constexpr std::array kHostOps = {
#define ICEMU_OP_NAME(n) std::string_view(#n),
    ICEMU_HOST_OPS(ICEMU_OP_NAME)
#undef ICEMU_OP_NAME
};

constexpr std::string_view name(Op op) {
    return kGuestOps[static_cast<std::size_t>(op)];
}

/// The guest op named `s`; nullopt for anything else (host ops included).
constexpr std::optional<Op> parse(std::string_view s) {
    for (std::size_t i = 0; i < kGuestOps.size(); ++i) {
        if (kGuestOps[i] == s) {
            return static_cast<Op>(i);
        }
    }
    return std::nullopt;
}

constexpr bool is_host_op(std::string_view s) {
    for (auto h : kHostOps) {
        if (h == s) {
            return true;
        }
    }
    return false;
}

static_assert(parse("dm_load") == Op::dm_load && name(Op::poweroff) == "poweroff");
static_assert(!parse("inject") && is_host_op("inject"));

} // namespace icemu::guest_ops
