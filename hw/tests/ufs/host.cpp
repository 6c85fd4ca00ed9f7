#include "host.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

namespace icemu::ufs {
namespace {

using Clock = std::chrono::steady_clock;

// Guest RAM layout inside a host's window.
constexpr std::uint64_t kUtrlOff = 0x0;      // 32 UTRDs, 1 KiB aligned
constexpr std::uint64_t kSqOff = 0x1000;     // MCQ SQ 0
constexpr std::uint64_t kCqOff = 0x2000;     // MCQ CQ 0
constexpr std::uint64_t kUcdOff = 0x10000;   // command descriptor (64 KiB)
constexpr std::uint64_t kDataOff = 0x100000; // data buffers (15 MiB)
constexpr std::uint64_t kDataMax = 0xf00000;
constexpr std::uint32_t kRspOff = 1024; // response UPIU inside the UCD
constexpr std::uint32_t kRspLen = 512;
constexpr std::uint32_t kPrdtOff = 2048; // PRDT inside the UCD
constexpr std::uint32_t kMaxPrdt = (0x10000 - kPrdtOff) / 16;
constexpr std::uint32_t kQueueEntries = 32;
constexpr std::uint32_t kGap = 64; // bytes between PRDT buffers
constexpr std::uint8_t kGapFill = 0x5a;
constexpr std::uint8_t kReadFill = 0xa5;
constexpr std::uint64_t kUnassignedAddr = 0xf0000000; // PCI hole, no BAR is placed there

// UTRD dword 0 (UFSHCI 4.0 §6.1.1).
constexpr std::uint32_t kCtUfsStorage = 1u << 28;
constexpr std::uint32_t kDdToDevice = 1u << 25;
constexpr std::uint32_t kDdFromDevice = 2u << 25;
constexpr std::uint32_t kInterrupt = 1u << 24;
constexpr std::uint32_t kCryptoEnable = 1u << 23;

// UPIU transaction codes and flags (JESD220 §10.5).
constexpr std::uint8_t kUpiuNopOut = 0x00;
constexpr std::uint8_t kUpiuCommand = 0x01;
constexpr std::uint8_t kFlagWrite = 0x20;
constexpr std::uint8_t kFlagRead = 0x40;

constexpr std::uint8_t kUicLinkStartup = 0x16;

// MCQ queue config registers, relative to QCFGPTR*0x200 + 0x40*q.
constexpr std::uint32_t kSqAttr = 0x00;
constexpr std::uint32_t kSqLba = 0x04;
constexpr std::uint32_t kSqUba = 0x08;
constexpr std::uint32_t kSqDao = 0x0c;
constexpr std::uint32_t kCqAttr = 0x20;
constexpr std::uint32_t kCqLba = 0x24;
constexpr std::uint32_t kCqUba = 0x28;
constexpr std::uint32_t kCqDao = 0x2c;

void put_le32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}
void put_le64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}
void put_be32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
    }
}
std::uint32_t get_le32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
           std::uint32_t{p[3]} << 24;
}

std::string hex(std::uint64_t v) {
    std::ostringstream os;
    os << "0x" << std::hex << v;
    return os.str();
}

} // namespace

std::string ocs_name(std::uint8_t v) {
    const char* name = "?";
    switch (v) {
    case 0x0:
        name = "SUCCESS";
        break;
    case 0x1:
        name = "INVALID_CMD_TABLE_ATTR";
        break;
    case 0x2:
        name = "INVALID_PRDT_ATTR";
        break;
    case 0x3:
        name = "MISMATCH_DATA_BUF_SIZE";
        break;
    case 0x4:
        name = "MISMATCH_RESP_UPIU_SIZE";
        break;
    case 0x5:
        name = "PEER_COMM_FAILURE";
        break;
    case 0x6:
        name = "ABORTED";
        break;
    case 0x7:
        name = "FATAL_ERROR";
        break;
    case 0x8:
        name = "DEVICE_FATAL_ERROR";
        break;
    case 0x9:
        name = "INVALID_CRYPTO_CONFIG";
        break;
    case 0xa:
        name = "GENERAL_CRYPTO_ERROR";
        break;
    case 0xf:
        name = "INVALID_OCS_VALUE";
        break;
    default:
        break;
    }
    return "OCS " + hex(v) + " (" + name + ")";
}

UfsHost::UfsHost(qtest::Machine& m, PciFunction fn, HostConfig cfg) : m_(m), fn_(fn), cfg_(cfg) {
    PciConfig pci(m_);
    bar_ = pci.map_bar(fn_, 0, cfg_.bar_addr);
    pci.enable(fn_);
}

void UfsHost::wait_for(const char* what, const std::function<bool()>& done) {
    const auto deadline = Clock::now() + m_.options().timeout;
    for (unsigned i = 0;; ++i) {
        if (done()) {
            return;
        }
        if (Clock::now() > deadline) {
            throw qtest::Error(std::string("UFS: timeout waiting for ") + what);
        }
        // Bottom halves and block I/O run in QEMU's main loop on their own; step the
        // virtual clock now and then for anything timer-driven.
        if (i % 8 == 7) {
            m_.clock_step(100);
        }
    }
}

void UfsHost::enable() {
    const std::uint32_t hce = bits::kHceHce | (cfg_.cge ? bits::kHceCge : 0u);
    wreg(reg::kHce, hce);
    wait_for("HCE to read 1", [&] { return (rreg(reg::kHce) & bits::kHceHce) != 0; });
    link_startup();
    std::uint32_t ie = bits::kIsUtrcs | bits::kIsUccs | bits::kIsCefes;
    if (cfg_.queue == QueueMode::mcq) {
        ie |= bits::kIsCqes;
    }
    wreg(reg::kIe, ie);
    if (cfg_.queue == QueueMode::mcq) {
        setup_mcq();
    } else {
        setup_legacy();
    }
    enabled_ = true;
    const std::uint8_t o = nop_out();
    if (o != ocs::kSuccess) {
        throw qtest::Error("UFS: NOP OUT after enable completed with " + ocs_name(o));
    }
}

void UfsHost::disable() {
    wreg(reg::kHce, 0);
    wait_for("HCE to read 0", [&] { return (rreg(reg::kHce) & bits::kHceHce) == 0; });
    enabled_ = false;
}

void UfsHost::link_startup() {
    wait_for("HCS.UCRDY", [&] { return (rreg(reg::kHcs) & bits::kHcsUcrdy) != 0; });
    wreg(reg::kUcmdarg1, 0);
    wreg(reg::kUcmdarg2, 0);
    wreg(reg::kUcmdarg3, 0);
    wreg(reg::kUiccmd, kUicLinkStartup);
    wait_for("IS.UCCS", [&] { return (rreg(reg::kIs) & bits::kIsUccs) != 0; });
    wreg(reg::kIs, bits::kIsUccs);
    const std::uint32_t result = rreg(reg::kUcmdarg2) & 0xff;
    if (result != 0) {
        throw qtest::Error("UFS: DME_LINK_STARTUP failed with result " + hex(result));
    }
    const std::uint32_t hcs = rreg(reg::kHcs);
    if (!(hcs & bits::kHcsDp) || !(hcs & bits::kHcsUtrlrdy)) {
        throw qtest::Error("UFS: HCS " + hex(hcs) + " lacks DP/UTRLRDY after link startup");
    }
}

void UfsHost::setup_legacy() {
    const std::uint64_t utrl = cfg_.ram_base + kUtrlOff;
    m_.memset(utrl, kQueueEntries * 32, 0);
    wreg(reg::kUtrlba, static_cast<std::uint32_t>(utrl));
    wreg(reg::kUtrlbau, static_cast<std::uint32_t>(utrl >> 32));
    wreg(reg::kUtrlrsr, 1);
}

void UfsHost::setup_mcq() {
    const std::uint32_t cap = rreg(reg::kCap);
    if (!(cap & bits::kCapMcqs)) {
        throw qtest::Error("UFS: MCQ requested but CAP.MCQS is 0 (use mcq=true)");
    }
    const std::uint32_t qcfgptr = (rreg(reg::kMcqCap) >> 16) & 0xff;
    const std::uint32_t qcfg = qcfgptr * 0x200; // queue 0
    const std::uint64_t sq = cfg_.ram_base + kSqOff;
    const std::uint64_t cq = cfg_.ram_base + kCqOff;
    m_.memset(sq, kQueueEntries * 32, 0);
    m_.memset(cq, kQueueEntries * 32, 0);
    // Attribute SIZE is in dwords; the CQ must exist before an SQ refers to it.
    const std::uint32_t size_dw = kQueueEntries * 32 / 4;
    wreg(qcfg + kCqLba, static_cast<std::uint32_t>(cq));
    wreg(qcfg + kCqUba, static_cast<std::uint32_t>(cq >> 32));
    wreg(qcfg + kCqAttr, (1u << 31) | size_dw);
    wreg(qcfg + kSqLba, static_cast<std::uint32_t>(sq));
    wreg(qcfg + kSqUba, static_cast<std::uint32_t>(sq >> 32));
    wreg(qcfg + kSqAttr, (1u << 31) | (0u << 16) | size_dw);
    sq_dao_ = rreg(qcfg + kSqDao);
    cq_dao_ = rreg(qcfg + kCqDao);
    sq_tail_ = rreg(sq_dao_ + 4);
    cq_head_ = rreg(cq_dao_);
}

std::uint32_t UfsHost::execute(const std::array<std::uint8_t, 32>& utrd, Completion& c,
                               bool detach) {
    if (!enabled_) {
        throw qtest::Error("UFS: request submitted to a disabled host");
    }
    if (cfg_.queue == QueueMode::legacy) {
        const std::uint64_t slot0 = cfg_.ram_base + kUtrlOff;
        m_.memwrite(slot0, utrd);
        wreg(reg::kUtrldbr, 1);
        if (detach) {
            enabled_ = false;
            return ocs::kInvalid;
        }
        wait_for("UTRLDBR bit 0 to clear", [&] { return (rreg(reg::kUtrldbr) & 1u) == 0; });
        const auto done = m_.memread(slot0, 32);
        c.is = rreg(reg::kIs);
        wreg(reg::kIs, bits::kIsUtrcs);
        return get_le32(done.data() + 8);
    }
    const std::uint64_t sq = cfg_.ram_base + kSqOff;
    const std::uint64_t cq = cfg_.ram_base + kCqOff;
    const std::uint32_t ring = kQueueEntries * 32;
    m_.memwrite(sq + sq_tail_, utrd);
    sq_tail_ = (sq_tail_ + 32) % ring;
    wreg(sq_dao_ + 4, sq_tail_);
    if (detach) {
        enabled_ = false;
        return ocs::kInvalid;
    }
    wait_for("a CQ entry", [&] { return rreg(cq_dao_ + 4) != cq_head_; });
    const auto cqe = m_.memread(cq + cq_head_, 32);
    cq_head_ = (cq_head_ + 32) % ring;
    wreg(cq_dao_, cq_head_);
    c.is = rreg(reg::kIs);
    wreg(reg::kIs, bits::kIsCqes);
    return cqe[16]; // CQE status = OCS
}

Completion UfsHost::submit_utrd(const std::array<std::uint8_t, 32>& utrd) {
    Completion c;
    c.ocs = static_cast<std::uint8_t>(execute(utrd, c));
    return c;
}

bool UfsHost::queue_busy() {
    if (cfg_.queue == QueueMode::legacy) {
        return (rreg(reg::kUtrldbr) & 1u) != 0;
    }
    return rreg(cq_dao_ + 4) != cq_head_;
}

Completion UfsHost::submit(const Request& req) {
    Completion c;
    const std::uint64_t ucd = cfg_.ram_base + kUcdOff;
    const std::uint64_t data = cfg_.ram_base + kDataOff;
    const std::size_t len = req.dir == DataDir::to_device     ? req.out.size()
                            : req.dir == DataDir::from_device ? req.in_len
                                                              : 0;

    // PRDT shape and guest buffer image (payload segments separated by canary gaps).
    std::vector<std::uint32_t> segs = req.segments;
    if (segs.empty() && len > 0) {
        for (std::size_t done = 0; done < len;) {
            const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(4096, len - done));
            segs.push_back(n);
            done += n;
        }
    }
    std::size_t seg_total = 0;
    for (const auto s : segs) {
        if (s == 0 || s > (1u << 18)) {
            throw qtest::Error("UFS: PRDT entry size out of range");
        }
        seg_total += s;
    }
    if (!req.no_prdt && (req.short_prdt  ? seg_total > len
                         : req.long_prdt ? seg_total < len
                                         : seg_total != len)) {
        throw qtest::Error("UFS: PRDT segments do not add up to the data length");
    }
    if (segs.size() > kMaxPrdt) {
        throw qtest::Error("UFS: too many PRDT entries");
    }
    const std::size_t image_len = seg_total + kGap * segs.size();
    if (image_len > kDataMax) {
        throw qtest::Error("UFS: transfer too large for the data window");
    }

    std::vector<std::uint8_t> ucd_image(kPrdtOff + 16 * segs.size(), 0);
    std::vector<std::uint8_t> image(image_len, kGapFill);
    std::vector<std::uint64_t> seg_off;
    {
        std::uint64_t off = 0;
        std::size_t src = 0;
        for (std::size_t i = 0; i < segs.size(); ++i) {
            seg_off.push_back(off);
            std::uint8_t* e = ucd_image.data() + kPrdtOff + 16 * i;
            put_le64(e, static_cast<int>(i) == req.unmapped_segment ? kUnassignedAddr : data + off);
            put_le32(e + 12, segs[i] - 1);
            if (req.dir == DataDir::to_device) {
                const std::size_t n = std::min<std::size_t>(segs[i], len - std::min(len, src));
                if (n > 0) {
                    std::memcpy(image.data() + off, req.out.data() + src, n);
                }
                std::memset(image.data() + off + n, kLongPrdtFill, segs[i] - n);
            } else {
                std::memset(image.data() + off, kReadFill, segs[i]);
            }
            src += segs[i];
            off += segs[i] + kGap;
        }
    }
    // Command UPIU.
    std::uint8_t* upiu = ucd_image.data();
    upiu[0] = kUpiuCommand;
    upiu[1] = req.dir == DataDir::to_device     ? kFlagWrite
              : req.dir == DataDir::from_device ? kFlagRead
                                                : 0;
    upiu[2] = req.lun;
    upiu[3] = task_tag_++;
    put_be32(upiu + 12, static_cast<std::uint32_t>(len));
    std::memcpy(upiu + 16, req.cdb.data(), req.cdb.size());

    m_.memwrite(ucd, ucd_image);
    if (!image.empty()) {
        m_.memwrite(data, image);
    }

    std::array<std::uint8_t, 32> utrd{};
    std::uint32_t dw0 = kCtUfsStorage | kInterrupt;
    if (req.dir == DataDir::to_device) {
        dw0 |= kDdToDevice;
    } else if (req.dir == DataDir::from_device) {
        dw0 |= kDdFromDevice;
    }
    if (req.crypto.ce) {
        dw0 |= kCryptoEnable;
    }
    dw0 |= req.crypto.cci;
    put_le32(utrd.data() + 0, dw0);
    put_le32(utrd.data() + 4, static_cast<std::uint32_t>(req.crypto.dun));
    put_le32(utrd.data() + 8, ocs::kInvalid);
    put_le32(utrd.data() + 12, static_cast<std::uint32_t>(req.crypto.dun >> 32));
    put_le32(utrd.data() + 16, static_cast<std::uint32_t>(ucd));
    put_le32(utrd.data() + 20, static_cast<std::uint32_t>(ucd >> 32));
    put_le32(utrd.data() + 24, (kRspLen / 4) | ((kRspOff / 4) << 16));
    const std::uint32_t prdtl = req.no_prdt ? 0u : static_cast<std::uint32_t>(segs.size());
    put_le32(utrd.data() + 28, prdtl | ((kPrdtOff / 4) << 16));

    c.ocs = static_cast<std::uint8_t>(execute(utrd, c, req.detach) & 0xff);
    if (req.detach) {
        return c;
    }

    const auto rsp = m_.memread(ucd + kRspOff, 64);
    c.response = rsp[6];
    c.scsi_status = rsp[7];
    const std::size_t sense_len = (std::size_t{rsp[32]} << 8) | rsp[33];
    if (sense_len > 0) {
        c.sense.assign(rsp.begin() + 34, rsp.begin() + 34 + std::min<std::size_t>(sense_len, 18));
    }

    const bool want_image =
        req.dir == DataDir::from_device || (req.dir == DataDir::to_device && req.read_back_out);
    if (want_image && !image.empty()) {
        const auto after = m_.memread(data, image.size());
        std::vector<std::uint8_t> payload;
        payload.reserve(seg_total);
        for (std::size_t i = 0; i < segs.size(); ++i) {
            const auto* p = after.data() + seg_off[i];
            payload.insert(payload.end(), p, p + segs[i]);
            for (std::uint32_t g = 0; g < kGap; ++g) {
                if (p[segs[i] + g] != kGapFill) {
                    c.gaps_intact = false;
                }
            }
        }
        if (req.dir == DataDir::from_device) {
            c.in = std::move(payload);
        } else {
            c.out_after = std::move(payload);
        }
    }
    return c;
}

std::uint8_t UfsHost::nop_out() {
    const std::uint64_t ucd = cfg_.ram_base + kUcdOff;
    std::vector<std::uint8_t> upiu(32, 0);
    upiu[0] = kUpiuNopOut;
    upiu[3] = task_tag_++;
    m_.memwrite(ucd, upiu);
    std::array<std::uint8_t, 32> utrd{};
    put_le32(utrd.data() + 0, kCtUfsStorage | kInterrupt);
    put_le32(utrd.data() + 8, ocs::kInvalid);
    put_le32(utrd.data() + 16, static_cast<std::uint32_t>(ucd));
    put_le32(utrd.data() + 20, static_cast<std::uint32_t>(ucd >> 32));
    put_le32(utrd.data() + 24, (kRspLen / 4) | ((kRspOff / 4) << 16));
    put_le32(utrd.data() + 28, (kPrdtOff / 4) << 16);
    Completion c;
    const auto o = static_cast<std::uint8_t>(execute(utrd, c) & 0xff);
    const auto rsp = m_.memread(ucd + kRspOff, 4);
    if (o == ocs::kSuccess && rsp[0] != 0x20) {
        throw qtest::Error("UFS: NOP OUT answered with transaction type " + hex(rsp[0]));
    }
    return o;
}

void UfsHost::wait_unit_ready(std::uint8_t lun) {
    for (int i = 0; i < 4; ++i) {
        Request r;
        r.lun = lun;
        r.cdb = cdb_test_unit_ready();
        const auto c = submit(r);
        if (c.ocs != ocs::kSuccess) {
            throw qtest::Error("UFS: TEST UNIT READY completed with " + ocs_name(c.ocs));
        }
        if (c.scsi_status == 0) {
            return;
        }
    }
    throw qtest::Error("UFS: LU " + std::to_string(lun) + " never became ready");
}

Completion UfsHost::write(std::uint8_t lun, std::uint64_t lba, std::span<const std::uint8_t> data,
                          CryptoFields crypto, std::vector<std::uint32_t> segments) {
    if (data.size() % kLuBlockSize != 0) {
        throw qtest::Error("UFS: write length is not a multiple of the LU block size");
    }
    Request r;
    r.lun = lun;
    const auto blocks = static_cast<std::uint32_t>(data.size() / kLuBlockSize);
    r.cdb = (lba > 0xffffffffu || blocks > 0xffff)
                ? cdb_write16(lba, blocks)
                : cdb_write10(static_cast<std::uint32_t>(lba), static_cast<std::uint16_t>(blocks));
    r.dir = DataDir::to_device;
    r.out.assign(data.begin(), data.end());
    r.crypto = crypto;
    r.segments = std::move(segments);
    return submit(r);
}

Completion UfsHost::read(std::uint8_t lun, std::uint64_t lba, std::uint32_t blocks,
                         CryptoFields crypto, std::vector<std::uint32_t> segments) {
    Request r;
    r.lun = lun;
    r.cdb = (lba > 0xffffffffu || blocks > 0xffff)
                ? cdb_read16(lba, blocks)
                : cdb_read10(static_cast<std::uint32_t>(lba), static_cast<std::uint16_t>(blocks));
    r.dir = DataDir::from_device;
    r.in_len = std::size_t{blocks} * kLuBlockSize;
    r.crypto = crypto;
    r.segments = std::move(segments);
    return submit(r);
}

// ---------------------------------------------------------------- CDBs

std::array<std::uint8_t, 16> cdb_test_unit_ready() {
    return {};
}

std::array<std::uint8_t, 16> cdb_request_sense(std::uint8_t alloc_len) {
    std::array<std::uint8_t, 16> c{};
    c[0] = 0x03;
    c[4] = alloc_len;
    return c;
}

std::array<std::uint8_t, 16> cdb_inquiry(std::uint16_t alloc_len) {
    std::array<std::uint8_t, 16> c{};
    c[0] = 0x12;
    c[3] = static_cast<std::uint8_t>(alloc_len >> 8);
    c[4] = static_cast<std::uint8_t>(alloc_len);
    return c;
}

namespace {
std::array<std::uint8_t, 16> rw10(std::uint8_t op, std::uint32_t lba, std::uint16_t blocks) {
    std::array<std::uint8_t, 16> c{};
    c[0] = op;
    put_be32(c.data() + 2, lba);
    c[7] = static_cast<std::uint8_t>(blocks >> 8);
    c[8] = static_cast<std::uint8_t>(blocks);
    return c;
}
std::array<std::uint8_t, 16> rw16(std::uint8_t op, std::uint64_t lba, std::uint32_t blocks) {
    std::array<std::uint8_t, 16> c{};
    c[0] = op;
    put_be32(c.data() + 2, static_cast<std::uint32_t>(lba >> 32));
    put_be32(c.data() + 6, static_cast<std::uint32_t>(lba));
    put_be32(c.data() + 10, blocks);
    return c;
}
} // namespace

std::array<std::uint8_t, 16> cdb_read10(std::uint32_t lba, std::uint16_t blocks) {
    return rw10(0x28, lba, blocks);
}
std::array<std::uint8_t, 16> cdb_write10(std::uint32_t lba, std::uint16_t blocks) {
    return rw10(0x2a, lba, blocks);
}
std::array<std::uint8_t, 16> cdb_read16(std::uint64_t lba, std::uint32_t blocks) {
    return rw16(0x88, lba, blocks);
}
std::array<std::uint8_t, 16> cdb_write16(std::uint64_t lba, std::uint32_t blocks) {
    return rw16(0x8a, lba, blocks);
}

} // namespace icemu::ufs
