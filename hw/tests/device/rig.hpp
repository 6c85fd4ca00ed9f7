// Test rig: one QEMU (q35, qtest accel) with N UFS controllers, each with its own raw backing
// file per LU (so tests can read the medium directly) and optionally a crypto event log.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "icemu/models/events.hpp"
#include "qtest/machine.hpp"
#include "ufs/crypto.hpp"
#include "ufs/host.hpp"

namespace icemu::test {

struct LuSpec {
    std::uint8_t lun = 0;
    std::size_t bytes = 4u << 20;
    std::uint8_t fill = 0; // initial medium contents
};

struct ControllerSpec {
    std::string id = "ufs0";
    std::string props;      // e.g. "crypto=on,crypto-keyslots=8"
    bool mcq = false;       // adds mcq=true,mcq-maxq=1 and drives it through MCQ
    bool event_log = false; // -chardev file + crypto-log=
    bool cge = true;        // host writes HCE.CGE when enabling
    std::vector<LuSpec> lus{LuSpec{}};
    std::vector<std::string> objects; // -object arguments it needs (e.g. a secret)
    std::vector<std::string> trace;   // -trace patterns, written to trace_path()
};

// Path of the QEMU binary under test: $ICEMU_QEMU, else the configured one.
std::string qemu_binary();

// A q35 machine with no device of ours and 64 MiB (the client's and the platform's tests).
qtest::MachineOptions bare_machine();

// Polls `cond` every `poll` until it holds (true) or `timeout` has passed (false): for what the
// QEMU main loop does after the command that asked for it returns (a reset, a suspend...).
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(10));

// An unsigned number from the environment (decimal, 0x hex or 0 octal), else `fallback`:
// the randomized tests' ICEMU_SEED and operation counts.
std::uint64_t env_u64(const char* name, std::uint64_t fallback);

class Rig {
public:
    explicit Rig(std::vector<ControllerSpec> controllers, bool enable = true);
    explicit Rig(ControllerSpec controller, bool enable = true)
        : Rig(std::vector<ControllerSpec>{std::move(controller)}, enable) {}

    qtest::Machine& machine() { return *machine_; }
    ufs::UfsHost& host(std::size_t i = 0) { return *hosts_.at(i); }
    const ControllerSpec& spec(std::size_t i = 0) const { return specs_.at(i); }
    std::string qom_path(std::size_t i = 0) const {
        return "/machine/peripheral/" + specs_.at(i).id;
    }

    // Brings controller i up and consumes each LU's UNIT ATTENTION.
    void bring_up(std::size_t i);

    std::filesystem::path medium_path(std::size_t ctrl, std::uint8_t lun) const;
    std::vector<std::uint8_t> medium(std::size_t ctrl, std::uint8_t lun, std::uint64_t offset,
                                     std::size_t len) const;
    std::vector<std::uint8_t> whole_medium(std::size_t ctrl, std::uint8_t lun) const;

    std::filesystem::path log_path(std::size_t ctrl) const;
    // QEMU's trace output (ControllerSpec::trace of any controller).
    std::filesystem::path trace_path() const { return dir_.path() / "trace.log"; }
    // Controller i's event log through the models' parser (icemu::models::events: schema,
    // types, seq without gaps, realize first); throws LogError on a line outside the schema.
    std::vector<models::events::Event> log_events(std::size_t ctrl) const;

private:
    std::vector<ControllerSpec> specs_;
    qtest::TempDir dir_;
    std::unique_ptr<qtest::Machine> machine_;
    std::vector<std::unique_ptr<ufs::UfsHost>> hosts_;
};

// "" when equal, else which 4 KiB blocks differ ("blocks 4-6 changed").
std::string changed_blocks(const std::vector<std::uint8_t>& before,
                           const std::vector<std::uint8_t>& after);

// Deterministic pseudo-random bytes (tests only; not the oracle).
std::vector<std::uint8_t> pattern_bytes(std::size_t n, std::uint64_t seed);

// The whole file as text ("" when it cannot be read): QEMU trace and event-log files.
std::string slurp(const std::filesystem::path& p);

} // namespace icemu::test
