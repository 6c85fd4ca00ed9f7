// A minimal UFSHCI host driver over qtest: brings a QEMU `ufs` controller up the way Linux
// does (HCE, DME_LINK_STARTUP, UTRL or MCQ queues), builds UTRD + command UPIU + PRDT in guest
// RAM and completes requests by polling (UTRLDBR for the legacy doorbell, the CQ for MCQ).
// One request is in flight at a time; all descriptors live in a private window of guest RAM.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "qtest/machine.hpp"
#include "ufs/pci.hpp"

namespace icemu::ufs {

// UFSHCI register offsets (UFSHCI 4.0 §5.2; QEMU include/block/ufs.h).
namespace reg {
constexpr std::uint32_t kCap = 0x00;
constexpr std::uint32_t kMcqCap = 0x04;
constexpr std::uint32_t kVer = 0x08;
constexpr std::uint32_t kIs = 0x20;
constexpr std::uint32_t kIe = 0x24;
constexpr std::uint32_t kHcs = 0x30;
constexpr std::uint32_t kHce = 0x34;
constexpr std::uint32_t kUtrlba = 0x50;
constexpr std::uint32_t kUtrlbau = 0x54;
constexpr std::uint32_t kUtrldbr = 0x58;
constexpr std::uint32_t kUtrlrsr = 0x60;
constexpr std::uint32_t kUiccmd = 0x90;
constexpr std::uint32_t kUcmdarg1 = 0x94;
constexpr std::uint32_t kUcmdarg2 = 0x98;
constexpr std::uint32_t kUcmdarg3 = 0x9c;
constexpr std::uint32_t kCcap = 0x100;
constexpr std::uint32_t kCryptoCap0 = 0x104;
constexpr std::uint32_t kConfig = 0x300;
} // namespace reg

namespace bits {
constexpr std::uint32_t kCapCs = 1u << 28;
constexpr std::uint32_t kCapMcqs = 1u << 30;
constexpr std::uint32_t kHceHce = 1u << 0;
constexpr std::uint32_t kHceCge = 1u << 1;
constexpr std::uint32_t kIsUtrcs = 1u << 0;
constexpr std::uint32_t kIsUccs = 1u << 10;
constexpr std::uint32_t kIsSbfes = 1u << 17;
constexpr std::uint32_t kIsCefes = 1u << 18;
constexpr std::uint32_t kIsCqes = 1u << 20;
constexpr std::uint32_t kHcsDp = 1u << 0;
constexpr std::uint32_t kHcsUtrlrdy = 1u << 1;
constexpr std::uint32_t kHcsUcrdy = 1u << 3;
} // namespace bits

// Overall command status (UFSHCI 4.0 table 6-2).
namespace ocs {
constexpr std::uint8_t kSuccess = 0x0;
constexpr std::uint8_t kInvalidCmdTableAttr = 0x1;
constexpr std::uint8_t kInvalidPrdtAttr = 0x2;
constexpr std::uint8_t kMismatchDataBufSize = 0x3;
constexpr std::uint8_t kFatalError = 0x7;
constexpr std::uint8_t kInvalidCryptoConfig = 0x9;
constexpr std::uint8_t kGeneralCryptoError = 0xa;
constexpr std::uint8_t kInvalid = 0xf;
} // namespace ocs

constexpr std::uint32_t kLuBlockSize = 4096; // QEMU's ufs-lu logical block
constexpr std::uint8_t kLongPrdtFill = 0xc3; // guest bytes past a write's data (long_prdt)

enum class QueueMode { legacy, mcq };
enum class DataDir { none, to_device, from_device };

struct CryptoFields {
    bool ce = false;
    std::uint8_t cci = 0;
    std::uint64_t dun = 0;
};

struct Request {
    std::uint8_t lun = 0;
    std::array<std::uint8_t, 16> cdb{};
    DataDir dir = DataDir::none;
    std::vector<std::uint8_t> out; // bytes sent to the device (dir == to_device)
    std::size_t in_len = 0;        // bytes expected from the device (dir == from_device)
    CryptoFields crypto;
    // Byte count of each PRDT entry; empty means 4 KiB entries. Entries are placed in guest
    // RAM with gaps between them so that the device has to walk the PRDT.
    std::vector<std::uint32_t> segments;
    // Announce the data length in the UPIU but send PRDTL = 0.
    bool no_prdt = false;
    // Allow `segments` to cover less than the data length (a PRDT shorter than the command).
    bool short_prdt = false;
    // Allow `segments` to cover more than the data length (a PRDT longer than the command);
    // the guest bytes past the data are kLongPrdtFill on a write.
    bool long_prdt = false;
    // Ring the doorbell (legacy queue) or the SQ tail (MCQ) and return at once: the request
    // stays in flight, the Completion is empty (OCS kInvalid). The host is unusable until it is
    // brought up again.
    bool detach = false;
    // Read the guest data buffer back after a write (to check it was not modified).
    bool read_back_out = false;
    // Index of a PRDT entry that points at unassigned guest-physical memory (-1: none).
    int unmapped_segment = -1;
};

struct Completion {
    std::uint8_t ocs = ocs::kInvalid;
    std::uint8_t response = 0xff;    // UPIU response
    std::uint8_t scsi_status = 0xff; // UPIU status
    std::vector<std::uint8_t> sense;
    std::vector<std::uint8_t> in;        // data from the device (dir == from_device)
    std::vector<std::uint8_t> out_after; // guest buffer after the request (read_back_out)
    bool gaps_intact = true;             // the device wrote nothing between PRDT entries
    std::uint32_t is = 0;                // IS as read at completion
};

struct HostConfig {
    QueueMode queue = QueueMode::legacy;
    std::uint64_t bar_addr = 0xe0000000;
    std::uint64_t ram_base = 0x01000000; // private 16 MiB window of guest RAM
    bool cge = true;                     // write HCE = HCE | CGE, as Linux does with crypto
};

class UfsHost {
public:
    UfsHost(qtest::Machine& m, PciFunction fn, HostConfig cfg);

    // Every register write is also reported to the observer (tests mirror them into a model).
    using WriteObserver = std::function<void(std::uint32_t offset, std::uint32_t value)>;
    void set_write_observer(WriteObserver observer) { observer_ = std::move(observer); }

    std::uint32_t rreg(std::uint32_t off) { return m_.readl(bar_.addr + off); }
    void wreg(std::uint32_t off, std::uint32_t value) {
        m_.writel(bar_.addr + off, value);
        if (observer_) {
            observer_(off, value);
        }
    }
    std::uint64_t bar_size() const { return bar_.size; }
    std::uint64_t bar_addr() const { return bar_.addr; }
    QueueMode queue() const { return cfg_.queue; }
    qtest::Machine& machine() { return m_; }

    // HCE=1 (with CGE per config), link startup, interrupts, transfer queues, NOP OUT.
    void enable();
    // HCE=0 and wait until it reads back 0.
    void disable();
    bool enabled() const { return enabled_; }

    Completion submit(const Request& req);
    // A hand-made UTRD (a hostile one), submitted as it is: the OCS and IS at completion.
    Completion submit_utrd(const std::array<std::uint8_t, 32>& utrd);
    std::uint8_t nop_out();
    // Legacy: UTRLDBR bit 0 is set; MCQ: the CQ holds an entry the host has not consumed.
    // Right after enable() with nothing submitted, true means work from before survived.
    bool queue_busy();
    // TEST UNIT READY until GOOD, consuming the power-on UNIT ATTENTION.
    void wait_unit_ready(std::uint8_t lun);

    Completion write(std::uint8_t lun, std::uint64_t lba, std::span<const std::uint8_t> data,
                     CryptoFields crypto = {}, std::vector<std::uint32_t> segments = {});
    Completion read(std::uint8_t lun, std::uint64_t lba, std::uint32_t blocks,
                    CryptoFields crypto = {}, std::vector<std::uint32_t> segments = {});

private:
    void link_startup();
    void setup_legacy();
    void setup_mcq();
    std::uint32_t execute(const std::array<std::uint8_t, 32>& utrd, Completion& c,
                          bool detach = false);
    void wait_for(const char* what, const std::function<bool()>& done);

    qtest::Machine& m_;
    PciFunction fn_;
    HostConfig cfg_;
    PciConfig::Bar bar_;
    WriteObserver observer_;
    bool enabled_ = false;
    std::uint8_t task_tag_ = 0;
    // MCQ queue 0
    std::uint32_t sq_dao_ = 0;
    std::uint32_t cq_dao_ = 0;
    std::uint32_t sq_tail_ = 0;
    std::uint32_t cq_head_ = 0;
};

// CDB builders (SBC-4), big-endian fields.
std::array<std::uint8_t, 16> cdb_test_unit_ready();
std::array<std::uint8_t, 16> cdb_request_sense(std::uint8_t alloc_len);
std::array<std::uint8_t, 16> cdb_inquiry(std::uint16_t alloc_len);
std::array<std::uint8_t, 16> cdb_read10(std::uint32_t lba, std::uint16_t blocks);
std::array<std::uint8_t, 16> cdb_write10(std::uint32_t lba, std::uint16_t blocks);
std::array<std::uint8_t, 16> cdb_read16(std::uint64_t lba, std::uint32_t blocks);
std::array<std::uint8_t, 16> cdb_write16(std::uint64_t lba, std::uint32_t blocks);

// "OCS 0x9 (INVALID_CRYPTO_CONFIG)"
std::string ocs_name(std::uint8_t ocs);

} // namespace icemu::ufs
