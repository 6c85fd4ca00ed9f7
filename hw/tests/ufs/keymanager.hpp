// A client of the hardware key manager (crypto-wrapped-keys=on): icemu's own register interface,
// docs/device.md "Hardware-wrapped keys", at 0xC0-0xDF of the host controller interface's
// registers: UFS BAR0 0xC0, CQHCI (sdhci-pci BAR0 + 0x200) 0xC0. Commands move their input and
// output through a 256-byte buffer in guest RAM (input at +0, output at +0x80); each runs
// synchronously in the KMCMD write.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "ufs/host.hpp"

namespace icemu::ufs::km {

// Register offsets from the host controller interface's base (UFS: BAR0; CQHCI: BAR0 + 0x200).
constexpr std::uint32_t kKmid = 0xc0;
constexpr std::uint32_t kKmcap = 0xc4;
constexpr std::uint32_t kKmcmd = 0xc8;
constexpr std::uint32_t kKmsts = 0xcc;
constexpr std::uint32_t kKmcfg = 0xd0;
constexpr std::uint32_t kKmba = 0xd8;
constexpr std::uint32_t kKmbau = 0xdc;

constexpr std::uint32_t kId = 0x4d4b4349; // "ICKM"
constexpr std::size_t kBlobLen = 64;
constexpr std::size_t kKeyLen = 32;
constexpr std::uint32_t kOutOffset = 0x80;

enum class Op : std::uint8_t { import_key = 1, generate = 2, prepare = 3, derive = 4, program = 5 };

// KMSTS.STATUS.
enum class Status : std::uint8_t {
    ok = 0,
    opcode = 1,
    length = 2,
    blob = 3,
    dma = 4,
    slot = 5,
    config = 6,
    cipher = 7,
};

const char* status_name(Status s);

struct Result {
    Status status = Status::cipher;
    std::uint32_t kmsts = 0;
    std::vector<std::uint8_t> out; // KMSTS.OUTLEN bytes from buffer + 0x80
};

class KeyManager {
public:
    // `base`: guest-physical address of the host controller interface's registers (the
    // offsets above are relative to it); `buffer`: guest-physical address of the command
    // buffer (KMBA/KMBAU).
    KeyManager(qtest::Machine& m, std::uint64_t base, std::uint64_t buffer);
    // The UFS controller's: base = BAR0.
    KeyManager(UfsHost& host, std::uint64_t buffer)
        : KeyManager(host.machine(), host.bar_addr(), buffer) {}

    std::uint32_t rreg(std::uint32_t off) { return m_.readl(base_ + off); }
    void wreg(std::uint32_t off, std::uint32_t v) { m_.writel(base_ + off, v); }
    std::uint32_t kmid() { return rreg(kKmid); }
    std::uint32_t kmcap() { return rreg(kKmcap); }

    // One command: `in` is written at the buffer, LEN = in.size() unless `len` is given,
    // KMCFG = `cfg` for PROGRAM. The output area is filled with 0xee first, so bytes the
    // device did not write are recognisable.
    Result run(Op op, std::span<const std::uint8_t> in, std::uint8_t slot = 0,
               std::uint32_t cfg = 0, std::optional<std::uint8_t> len = std::nullopt);
    // The same with a raw opcode (values the device must refuse).
    Result run_raw(std::uint8_t op, std::span<const std::uint8_t> in, std::uint8_t slot,
                   std::uint32_t cfg, std::uint8_t len);

    Result import_key(std::span<const std::uint8_t> raw) { return run(Op::import_key, raw); }
    Result generate() { return run(Op::generate, {}); }
    Result prepare(std::span<const std::uint8_t> lt) { return run(Op::prepare, lt); }
    Result derive(std::span<const std::uint8_t> eph) { return run(Op::derive, eph); }
    // KMCFG = DUSIZE (du_bytes / 512, one-hot) | CAPIDX << 8.
    Result program(std::span<const std::uint8_t> eph, unsigned slot, std::uint32_t du_bytes,
                   std::uint8_t capidx = 0);

    // `in_ram` false: the buffer is not guest RAM (a hostile address); commands then write
    // neither their input nor the 0xee fill there.
    void set_buffer(std::uint64_t buffer, bool in_ram = true);
    // Zero the buffer in guest RAM (a test that scans QEMU's memory for keys clears its own).
    void clear_buffer();

private:
    qtest::Machine& m_;
    std::uint64_t base_;
    std::uint64_t buffer_;
    bool in_ram_ = true;
};

} // namespace icemu::ufs::km
