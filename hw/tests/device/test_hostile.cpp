// A guest that controls every register and descriptor: a CQHCI transfer descriptor aimed at the
// controller's own registers, a PRDT longer than the command, byte and word accesses to the
// keyslot registers, a machine reset while a CE request is in flight, and QEMU's own trace of
// a key being programmed. Each case crashed QEMU, corrupted the medium, leaked the request or
// put key bytes in a trace before it was fixed. Expected ciphertext: icemu::models::xts only.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "device/test_cqhci_rig.hpp"
#include "icemu/models/xts.hpp"
#include "ufs/crypto.hpp"
#include "ufs/host.hpp"

using namespace icemu;
namespace reg = cqhci::reg;
namespace bits = cqhci::bits;
namespace sdhci = cqhci::sdhci;

namespace {

// ---------------------------------------------------------------- eMMC / CQHCI

void put_le32(std::vector<std::uint8_t>& b, std::size_t off, std::uint32_t v) {
    for (unsigned i = 0; i < 4; ++i) {
        b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

// A 16-byte transfer descriptor (dma64): valid, act=tran, length (0 = 64 KiB), address.
std::vector<std::uint8_t> tran_desc(std::uint64_t addr, std::uint32_t len, bool end) {
    std::vector<std::uint8_t> d(16, 0);
    const std::uint64_t w0 = 1u | (end ? 2u : 0u) | (4u << 3) |
                             (std::uint64_t{len & 0xffff} << 16) | ((addr & 0xffffffffull) << 32);
    for (unsigned i = 0; i < 8; ++i) {
        d[i] = static_cast<std::uint8_t>(w0 >> (8 * i));
        d[8 + i] = static_cast<std::uint8_t>((addr >> 32) >> (8 * i));
    }
    return d;
}

struct HostileTarget {
    const char* what;
    std::uint32_t bar_offset;          // where the first descriptor points (BAR0 offset)
    std::vector<std::uint32_t> dwords; // data the copy writes there, dword by dword
    bool card_in_cmdq = false;         // CMD48 needs the card in command queue mode
};

// Each register write a read's copy could make that, before the fix, freed the task under the
// copy (CFG.ENABLE 1 -> 0, CTL halt + clear all, halt then TCLR, SDHCI Software Reset For All,
// CMD48 "discard queue" through the SDHCI command register).
std::vector<HostileTarget> hostile_targets() {
    constexpr std::uint32_t cq = cqhci::kCqhciOffset;
    std::vector<HostileTarget> t;
    t.push_back({"CQHCI CFG := 0", cq + reg::kCfg, {0}});
    t.push_back(
        {"CQHCI CTL := HALT | CLEAR_ALL", cq + reg::kCtl, {bits::kCtlHalt | bits::kCtlClearAll}});
    {
        // CTL (halt), IS, ISTE, ISGE, IC, TDLBA, TDLBAU, TDBR, TCN, DQS, DPT, TCLR := all
        std::vector<std::uint32_t> d((reg::kTclr - reg::kCtl) / 4 + 1, 0);
        d.front() = bits::kCtlHalt;
        d.back() = 0xffffffffu;
        t.push_back({"CQHCI CTL := HALT, then TCLR := all tasks", cq + reg::kCtl, d});
    }
    // 0x2c: clock control (16 bits), timeout control, software reset (bits 31:24)
    t.push_back({"SDHCI software reset for all",
                 sdhci::kClkCon,
                 {0x0007u | (std::uint32_t{sdhci::kResetAll} << 24)}});
    // ARGUMENT = 1 (discard the queue); TRNMOD = 0, COMMAND = CMD48, R1b, CRC and index check
    t.push_back({"SDHCI CMD48 discard queue",
                 sdhci::kArgument,
                 {1u, (std::uint32_t{(48u << 8) | 0x1bu}) << 16},
                 true});
    return t;
}

} // namespace

TEST_CASE("cqhci: a read whose transfer descriptor aims at the controller's own registers fails "
          "the task instead of freeing it under the copy",
          "[device][cqhci][hostile]") {
    // 65535 blocks: the bounce buffer (32 MiB) is an mmap of its own, so a copy that goes on
    // reading it after it was freed faults at once (a smaller one needs valgrind to see it).
    constexpr std::uint16_t kBlocks = 0xffff;
    constexpr std::size_t kMedium = 64u << 20; // the eMMC model wants a power of 2
    for (const auto& target : hostile_targets()) {
        DYNAMIC_SECTION(target.what) {
            cqhci_test::EmmcOptions o;
            o.medium_bytes = kMedium;
            cqhci_test::EmmcRig r(o);
            auto& h = r.host();
            auto& m = r.machine();
            if (target.card_in_cmdq) {
                REQUIRE(h.init_card(true));
            }
            // the medium's first bytes are what the read's copy writes into the registers
            {
                std::vector<std::uint8_t> head(target.dwords.size() * 4, 0);
                for (std::size_t i = 0; i < target.dwords.size(); ++i) {
                    put_le32(head, 4 * i, target.dwords[i]);
                }
                std::fstream f(r.medium_path(), std::ios::binary | std::ios::in | std::ios::out);
                f.write(reinterpret_cast<const char*>(head.data()),
                        static_cast<std::streamsize>(head.size()));
            }
            h.enable(false);
            const std::uint32_t norintsten = h.rsdhci(sdhci::kNorIntStsEn);
            const auto t = cqhci_test::task(0, false, 0, kBlocks);
            h.prepare(t);
            // first descriptor: 64 KiB at the register; the rest of the list into guest RAM
            auto first = tran_desc(h.bar_addr() + target.bar_offset, 0, false);
            m.memwrite(h.transfer_list(0), first);
            h.ring(1u);

            // Before the fix QEMU died here (SIGSEGV in the copy): every access below throws
            // qtest::QemuDied with the signal.
            const std::uint32_t tcn = h.wait_tcn(1u);
            CHECK(tcn == 0u);
            const std::uint32_t is = h.rreg(reg::kIs);
            CHECK((is & bits::kIsRed) != 0);
            CHECK((h.rreg(reg::kTerri) & bits::kTerriDValid) != 0);
            // none of the register writes took effect: still enabled, not halted, no reset
            CHECK((h.rreg(reg::kCfg) & bits::kCfgEnable) != 0);
            CHECK((h.rreg(reg::kCtl) & bits::kCtlHalt) == 0);
            CHECK(h.rsdhci(sdhci::kNorIntStsEn) == norintsten);
            CHECK((h.rreg(reg::kTdbr) & 1u) != 0); // the failed task waits to be cleared
            CHECK(m.alive());

            // Linux's recovery clears the task; the queue works again
            h.wreg(reg::kCtl, bits::kCtlHalt);
            h.wreg(reg::kTclr, 1u);
            h.wreg(reg::kCtl, 0);
            h.wreg(reg::kIs, 0x3f);
            h.wreg(reg::kTerri, 0);
            CHECK(h.rreg(reg::kTdbr) == 0u);
            const auto data = test::pattern_bytes(8 * 512, 77);
            REQUIRE(h.write(1, 4096, data));
            const auto back = h.read(2, 4096, 8);
            REQUIRE(back);
            CHECK(*back == data);
        }
    }
}

TEST_CASE("cqhci: a task crossing DUN 2^32 carries into tweak bit 32, like the kernel's fallback",
          "[device][cqhci][hostile][crypto]") {
    cqhci_test::EmmcRig r(cqhci_test::cq_options(true));
    auto& h = r.host();
    h.enable(true);
    const auto key = cqhci_test::cryptokey(9);
    h.program_keyslot(2, key, 512);
    const auto plain = test::pattern_bytes(4 * 512, 10);
    REQUIRE(h.write(0, 64, plain, cqhci::Crypto{true, 2, 0xfffffffeu}));
    const auto medium = r.medium(64 * 512, plain.size());
    // units 0-1 use tweaks 0xfffffffe, 0xffffffff; units 2-3 use 2^32 and 2^32 + 1
    CHECK(medium == cqhci_test::model_encrypt(key, 0xfffffffeull, 512, plain));
    const auto xts_key = models::xts_key_from_cryptokey(key, 256);
    const std::vector<std::uint8_t> tail(plain.begin() + 1024, plain.end());
    const auto wrapped = models::xts_encrypt(xts_key, 0, 512, tail);
    CHECK(std::vector<std::uint8_t>(medium.begin() + 1024, medium.end()) != wrapped);
    const auto back = h.read(1, 64, 4, cqhci::Crypto{true, 2, 0xfffffffeu});
    REQUIRE(back);
    CHECK(*back == plain);
}

// ---------------------------------------------------------------- UFS

namespace {

// One q35 machine with one UFS controller (crypto=on + `props`) at 00:04.0 and LU 0 on a raw
// file of `lu_bytes` zeros, or on `blockdev` (a -blockdev spec; node-name lu0 is added).
class UfsBox {
public:
    UfsBox(const std::string& props, std::vector<std::string> extra_args = {},
           const std::string& blockdev = {}, std::size_t lu_bytes = 4u << 20,
           ufs::QueueMode queue = ufs::QueueMode::legacy)
        : dir_("icemu-hostile"), queue_(queue) {
        qtest::MachineOptions opts;
        opts.qemu_binary = test::qemu_binary();
        opts.extra_args = {"-m", "256M"};
        opts.extra_args.insert(opts.extra_args.end(), extra_args.begin(), extra_args.end());
        opts.extra_args.insert(
            opts.extra_args.end(),
            {"-device",
             "ufs,id=ufs0,serial=hostile,addr=4,crypto=on" +
                 std::string(queue == ufs::QueueMode::mcq ? ",mcq=true,mcq-maxq=1" : "") +
                 (props.empty() ? "" : "," + props)});
        if (blockdev.empty()) {
            std::ofstream f(medium_path(), std::ios::binary | std::ios::trunc);
            const std::vector<char> zero(65536, 0);
            for (std::size_t done = 0; done < lu_bytes; done += zero.size()) {
                f.write(zero.data(), static_cast<std::streamsize>(zero.size()));
            }
            opts.extra_args.insert(
                opts.extra_args.end(),
                {"-blockdev", "driver=file,node-name=lu0-file,filename=" + medium_path().string(),
                 "-blockdev", "driver=raw,node-name=lu0,file=lu0-file"});
        } else {
            opts.extra_args.insert(opts.extra_args.end(),
                                   {"-blockdev", blockdev + ",node-name=lu0"});
        }
        opts.extra_args.insert(opts.extra_args.end(),
                               {"-device", "ufs-lu,bus=ufs0,lun=0,drive=lu0"});
        machine_ = std::make_unique<qtest::Machine>(opts);
        attach();
    }

    // Maps BAR0, enables the function and brings the controller up (Linux-like, then TEST
    // UNIT READY until GOOD). After a machine reset: HCE 1 -> 0 first, as ufshcd does.
    void attach(bool after_reset = false) {
        ufs::PciConfig pci(*machine_);
        const auto fns = pci.find(ufs::kRedHatVendor, ufs::kUfsDevice);
        REQUIRE(fns.size() == 1);
        fn_ = fns[0];
        ufs::HostConfig hc;
        hc.queue = queue_;
        host_ = std::make_unique<ufs::UfsHost>(*machine_, fn_, hc);
        if (after_reset) {
            host_->disable();
        }
        host_->enable();
        host_->wait_unit_ready(0);
        caps_ = ufs::read_crypto_capabilities(*host_);
    }

    qtest::Machine& machine() { return *machine_; }
    ufs::UfsHost& host() { return *host_; }
    ufs::PciFunction fn() const { return fn_; }
    const ufs::CryptoCapabilities& caps() const { return caps_; }
    std::filesystem::path medium_path() const { return dir_ / "lu0.img"; }
    std::filesystem::path file(const char* name) const { return dir_ / name; }
    std::vector<std::uint8_t> medium(std::uint64_t off, std::size_t len) const {
        std::ifstream f(medium_path(), std::ios::binary);
        f.seekg(static_cast<std::streamoff>(off));
        std::vector<std::uint8_t> out(len);
        f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(len));
        return out;
    }
    nlohmann::json counters() {
        return machine_->qom_get("/machine/peripheral/ufs0", "crypto-state")["counters"];
    }

private:
    qtest::TempDir dir_;
    ufs::QueueMode queue_;
    std::unique_ptr<qtest::Machine> machine_;
    std::unique_ptr<ufs::UfsHost> host_;
    ufs::PciFunction fn_;
    ufs::CryptoCapabilities caps_;
};

std::array<std::uint8_t, 64> ufs_cryptokey(std::uint64_t seed) {
    const auto k = test::pattern_bytes(64, seed);
    std::array<std::uint8_t, 64> out{};
    std::copy(k.begin(), k.end(), out.begin());
    return out;
}

std::string hex32(std::uint32_t v) {
    char b[16];
    std::snprintf(b, sizeof b, "0x%x", v);
    return b;
}

} // namespace

TEST_CASE("ufs: QEMU's trace of register writes never shows a key being programmed",
          "[device][crypto][hostile][trace]") {
    // QEMU's default trace backend ("log") writes enabled events to the -D file.
    const qtest::TempDir tmp("icemu-trace");
    const auto trace = tmp / "trace.log";
    const auto key = ufs_cryptokey(0x5eed);
    {
        UfsBox box("", {"-trace", "enable=ufs_*", "-trace", "enable=inline_crypto_*", "-D",
                        trace.string()});
        ufs::program_keyslot(box.host(), box.caps(), 3, key, 4096, 0);
        ufs::evict_keyslot(box.host(), box.caps(), 3);
        box.machine().shutdown();
    }
    const std::string log = test::slurp(trace);
    // the trace works and shows register writes (so the check below can fail): HCE := 3
    REQUIRE(log.find("ufs_mmio_write addr 0x34 data 0x3 ") != std::string::npos);
    // the keyslot writes are traced by the engine, without the key's value
    CHECK(log.find("inline_crypto_key_write") != std::string::npos);
    CHECK(log.find("inline_crypto_cfg_write") != std::string::npos);
    for (unsigned i = 0; i < 16; ++i) {
        std::uint32_t dw = 0;
        for (unsigned b = 0; b < 4; ++b) {
            dw |= std::uint32_t{key[4 * i + b]} << (8 * b);
        }
        char h8[16];
        std::snprintf(h8, sizeof h8, "%08x", dw);
        INFO("CRYPTOKEY dword " << i << " = " << hex32(dw));
        CHECK(log.find("data " + hex32(dw) + " ") == std::string::npos);
        CHECK(log.find(h8) == std::string::npos);
    }
}

TEST_CASE("ufs: the engine traces each cause for which it refuses a request, without key bytes",
          "[device][crypto][hostile][trace]") {
    const qtest::TempDir tmp("icemu-trace");
    const auto trace = tmp / "trace.log";
    const auto key = ufs_cryptokey(0x7ace);
    std::vector<std::pair<std::string, std::uint8_t>> refusals; // expected event, OCS
    {
        // cap 0: AES-256-XTS 4 and 8 KiB data units; cap 1: AES-ECB (a slot using it is invalid)
        UfsBox box("crypto-keyslots=4,crypto-caps=aes-xts-256:0x18/aes-ecb-256:0x08",
                   {"-trace", "enable=inline_crypto_refuse_*", "-trace",
                    "enable=inline_crypto_fault", "-D", trace.string()});
        auto& h = box.host();
        ufs::program_keyslot(h, box.caps(), 0, key, 4096, 0);
        ufs::program_keyslot(h, box.caps(), 1, key, 4096, 1);
        ufs::program_keyslot(h, box.caps(), 3, key, 8192, 0);
        const auto write = [&](std::uint8_t cci) {
            ufs::Request w;
            w.cdb = ufs::cdb_write10(0, 1);
            w.dir = ufs::DataDir::to_device;
            w.out = test::pattern_bytes(ufs::kLuBlockSize, cci);
            w.crypto = {true, cci, 0};
            return w;
        };
        const auto expect = [&](const char* event, const ufs::Request& req, std::uint8_t ocs) {
            INFO(event);
            CHECK(h.submit(req).ocs == ocs);
            refusals.emplace_back(event, ocs);
        };
        expect("inline_crypto_refuse_cci", write(5), ufs::ocs::kInvalidCryptoConfig);
        expect("inline_crypto_refuse_disarmed", write(2), ufs::ocs::kInvalidCryptoConfig);
        expect("inline_crypto_refuse_invalid", write(1), ufs::ocs::kInvalidCryptoConfig);
        // one 4 KiB block with slot 3's 8 KiB data unit
        expect("inline_crypto_refuse_align", write(3), ufs::ocs::kInvalidCryptoConfig);
        {
            ufs::Request same;
            same.cdb = {0x41, 0, 0, 0, 0, 8, 0, 0, 1}; // WRITE SAME(10) LBA 8, 1 block
            same.dir = ufs::DataDir::to_device;
            same.out = test::pattern_bytes(ufs::kLuBlockSize, 9);
            same.crypto = {true, 0, 0};
            expect("inline_crypto_refuse_opcode", same, ufs::ocs::kInvalidCryptoConfig);
        }
        {
            auto shorter = write(0);
            shorter.cdb = ufs::cdb_write10(0, 2);
            shorter.out = test::pattern_bytes(2 * ufs::kLuBlockSize, 10);
            shorter.segments = {ufs::kLuBlockSize};
            shorter.short_prdt = true;
            expect("inline_crypto_refuse_no_buf", shorter, ufs::ocs::kMismatchDataBufSize);
        }
        box.machine().qom_set("/machine/peripheral/ufs0", "crypto-fault-count", 1);
        expect("inline_crypto_fault", write(0), ufs::ocs::kGeneralCryptoError);
        // HCE stays 1, CGE := 0
        h.wreg(0x34, 1);
        expect("inline_crypto_refuse_cge", write(0), ufs::ocs::kInvalidCryptoConfig);
        // and a request the engine admits is not traced as refused
        h.wreg(0x34, 3);
        CHECK(h.submit(write(0)).ocs == ufs::ocs::kSuccess);
        box.machine().shutdown();
    }
    const std::string log = test::slurp(trace);
    std::size_t lines = 0;
    for (std::size_t p = log.find("inline_crypto_"); p != std::string::npos;
         p = log.find("inline_crypto_", p + 1)) {
        ++lines;
    }
    CHECK(lines == refusals.size());
    for (const auto& [event, ocs] : refusals) {
        INFO(event);
        CHECK(log.find(event + " ") != std::string::npos);
    }
    for (unsigned i = 0; i < 16; ++i) {
        char h8[16];
        std::snprintf(h8, sizeof h8, "%02x%02x%02x%02x", key[4 * i + 3], key[4 * i + 2],
                      key[4 * i + 1], key[4 * i]);
        CHECK(log.find(h8) == std::string::npos);
    }
}

TEST_CASE("ufs: byte and word accesses to a keyslot never land on the wrong bits of a dword",
          "[device][crypto][hostile]") {
    UfsBox box("crypto-caps=aes-xts-256:0x0f/aes-xts-128:0x08");
    auto& m = box.machine();
    const std::uint64_t dw16 = box.host().bar_addr() + box.caps().cfg_offset(1) + 0x40;
    // DUSIZE 4096 (0x08), CAPIDX 1, CFGE 0
    const std::uint32_t cfg = ufs::cfg_dword16(4096, 1, false);
    REQUIRE(cfg == 0x0108u);
    m.writel(dw16, cfg);
    REQUIRE(m.readl(dw16) == cfg);
    // byte 1 is CAPIDX: refused (0) or the right byte, never DUSIZE
    const std::uint8_t b1 = m.readb(dw16 + 1);
    CHECK((b1 == 0x00 || b1 == 0x01));
    const std::uint16_t w1 = m.readw(dw16 + 2);
    CHECK((w1 == 0x0000));
    // writing the CFGE byte / the upper word: refused, or applied to bits 31:24 / 31:16
    m.writeb(dw16 + 3, 0x80);
    std::uint32_t now = m.readl(dw16);
    CHECK((now == cfg || now == (cfg | 0x80000000u)));
    m.writel(dw16, cfg);
    m.writew(dw16 + 2, 0x8000);
    now = m.readl(dw16);
    CHECK((now == cfg || now == (cfg | 0x80000000u)));
    // dword accesses still work
    m.writel(dw16, cfg);
    CHECK(m.readl(dw16) == cfg);
}

TEST_CASE("ufs: a PRDT longer than the command moves only the command's blocks, CE=0 and CE=1",
          "[device][crypto][hostile]") {
    const auto key = ufs_cryptokey(41);
    const auto xts_key = models::xts_key_from_cryptokey(key, 256);
    for (const char* staging : {"", "x-crypto-staging-size=0"}) {
        for (const bool ce : {false, true}) {
            INFO((ce ? "CE=1" : "CE=0") << (*staging ? " chunked" : ""));
            UfsBox box(staging);
            auto& h = box.host();
            ufs::program_keyslot(h, box.caps(), 0, key, 4096, 0);
            const ufs::CryptoFields c{ce, 0, 300};
            // blocks 3 and 4 hold known data first
            const auto old = test::pattern_bytes(2 * ufs::kLuBlockSize, 1);
            REQUIRE(h.write(0, 3, old).ocs == ufs::ocs::kSuccess);
            const auto before = box.medium(0, 4u << 20);

            // WRITE(10) of block 3 with an 8 KiB PRDT
            ufs::Request w;
            w.cdb = ufs::cdb_write10(3, 1);
            w.dir = ufs::DataDir::to_device;
            w.out = test::pattern_bytes(ufs::kLuBlockSize, 2);
            w.segments = {ufs::kLuBlockSize, ufs::kLuBlockSize};
            w.long_prdt = true;
            w.crypto = c;
            const auto wc = h.submit(w);
            CHECK(wc.ocs == ufs::ocs::kSuccess);
            CHECK(wc.scsi_status == 0);
            auto after = box.medium(0, 4u << 20);
            CHECK(test::changed_blocks(before, after) == "changed blocks: 3");
            const auto block3 = box.medium(3 * ufs::kLuBlockSize, ufs::kLuBlockSize);
            CHECK(block3 == (ce ? models::xts_encrypt(xts_key, 300, 4096, w.out) : w.out));

            // READ(10) of block 4 with an 8 KiB PRDT: the second 4 KiB of guest memory stay
            ufs::Request rd;
            rd.cdb = ufs::cdb_read10(4, 1);
            rd.dir = ufs::DataDir::from_device;
            rd.in_len = ufs::kLuBlockSize;
            rd.segments = {ufs::kLuBlockSize, ufs::kLuBlockSize};
            rd.long_prdt = true;
            rd.crypto = ufs::CryptoFields{ce, 0, 301};
            const auto rc = h.submit(rd);
            CHECK(rc.ocs == ufs::ocs::kSuccess);
            REQUIRE(rc.in.size() == 2 * ufs::kLuBlockSize);
            const std::vector<std::uint8_t> got(rc.in.begin(), rc.in.begin() + 4096);
            const std::vector<std::uint8_t> old4(old.begin() + 4096, old.end());
            CHECK(got == (ce ? models::xts_decrypt(xts_key, 301, 4096, old4) : old4));
            CHECK(std::all_of(rc.in.begin() + 4096, rc.in.end(),
                              [](std::uint8_t b) { return b == 0xa5; }));
            CHECK(box.medium(0, 4u << 20) == after);
        }
    }
}

TEST_CASE("ufs: a machine reset or HCE 1 -> 0 with a CE READ in flight frees its slot, its key "
          "and its staging memory, legacy doorbell and MCQ",
          "[device][crypto][hostile][reset]") {
    const bool mcq = GENERATE(false, true);
    const bool machine_reset = GENERATE(true, false);
    INFO((mcq ? "MCQ" : "legacy doorbell") << ", " << (machine_reset ? "system_reset" : "HCE 0"));
    // 1 s per I/O; 64 KiB of staging memory: one granule, which the in-flight READ holds
    UfsBox box("x-crypto-staging-size=65536", {},
               "driver=null-co,size=4194304,read-zeroes=on,latency-ns=1000000000", 4u << 20,
               mcq ? ufs::QueueMode::mcq : ufs::QueueMode::legacy);
    auto& m = box.machine();
    const auto key = ufs_cryptokey(7);
    ufs::program_keyslot(box.host(), box.caps(), 0, key, 4096, 0);
    REQUIRE(box.counters()["staged"] == 0);

    ufs::Request rd;
    rd.cdb = ufs::cdb_read10(0, 1);
    rd.dir = ufs::DataDir::from_device;
    rd.in_len = ufs::kLuBlockSize;
    rd.crypto = ufs::CryptoFields{true, 0, 0};
    rd.detach = true;
    box.host().submit(rd);
    // wait until the engine admitted it (staging lent), then reset the machine under it
    REQUIRE(test::eventually([&] { return box.counters()["staged"] == 1; },
                             std::chrono::seconds(10), std::chrono::milliseconds(5)));
    if (!mcq) {
        REQUIRE((box.host().rreg(ufs::reg::kUtrldbr) & 1u) != 0);
    }
    // The driver comes back: the READ was dropped with its slot or queue (no doorbell bit, no
    // completion posted into the new queues); it reprograms its key (the reset or stop wiped
    // it, and ufshcd reprograms after a host reset) and reads again: the request gets the
    // staging granule (it was released) and decrypts right.
    auto driver_comes_back = [&] {
        box.attach(true);
        CHECK_FALSE(box.host().queue_busy());
        ufs::program_keyslot(box.host(), box.caps(), 0, key, 4096, 0);
        const auto c = box.host().read(0, 0, 1, ufs::CryptoFields{true, 0, 0});
        CHECK(c.ocs == ufs::ocs::kSuccess);
        CHECK_FALSE(box.host().queue_busy());
        const auto counters = box.counters();
        CHECK(counters["staged"] == 2);
        CHECK(counters["chunked"] == 0);
        const auto xts_key = models::xts_key_from_cryptokey(key, 256);
        CHECK(c.in == models::xts_decrypt(xts_key, 0, 4096, std::vector<std::uint8_t>(4096, 0)));
    };
    if (!machine_reset) {
        // ufshcd_hba_stop(): the controller stops, the READ is dropped with its slot and no
        // completion is posted; Linux sets the MCQ queues up again from entry 0
        box.host().disable();
        CHECK((box.host().rreg(ufs::reg::kUtrldbr) & 1u) == 0u);
        driver_comes_back();
        return;
    }
    m.qmp("system_reset");
    // the reset has run when the function's COMMAND register is 0 again (it drains the READ)
    ufs::PciConfig pci(m);
    REQUIRE(test::eventually([&] { return (pci.read32(box.fn(), 0x04) & 0x6) == 0; },
                             std::chrono::seconds(20), std::chrono::milliseconds(20)));
    if (!mcq) {
        // the request was dropped with the queue: its doorbell bit is clear before the driver
        // touches the controller again
        pci.map_bar(box.fn(), 0, 0xe0000000ull);
        pci.enable(box.fn());
        REQUIRE((m.readl(0xe0000000ull + ufs::reg::kUtrldbr) & 1u) == 0u);
    }
    driver_comes_back();
}

TEST_CASE("ufs: a request whose UCD is outside guest memory completes with OCS FATAL_ERROR and "
          "IS.SBFES, legacy doorbell and MCQ, and the next one runs",
          "[device][hostile][fuzz]") {
    // UFSHCI: a DMA the host controller cannot do is a System Bus Fatal Error (IS.SBFES); the
    // request's OCS is FATAL_ERROR. Before, it stayed running and its slot (or MCQ request)
    // was lost until QEMU restarted.
    const bool mcq = GENERATE(false, true);
    INFO((mcq ? "MCQ" : "legacy doorbell"));
    UfsBox box("", {}, {}, 4u << 20, mcq ? ufs::QueueMode::mcq : ufs::QueueMode::legacy);
    auto& h = box.host();
    REQUIRE((h.rreg(ufs::reg::kIs) & ufs::bits::kIsSbfes) == 0);
    // a NOP OUT (UFS storage command type, no data) whose UCD is at 2^48
    std::array<std::uint8_t, 32> utrd{};
    const std::uint32_t dw[] = {1u << 28, 0, ufs::ocs::kInvalid, 0, 0, 0x10000, 0x00800020};
    std::memcpy(utrd.data(), dw, sizeof(dw));
    const auto c = h.submit_utrd(utrd);
    CHECK(c.ocs == ufs::ocs::kFatalError);
    CHECK((c.is & ufs::bits::kIsSbfes) != 0);
    CHECK_FALSE(h.queue_busy());
    CHECK(h.nop_out() == ufs::ocs::kSuccess);
    CHECK_FALSE(h.queue_busy());
    CHECK(box.machine().alive());
}

TEST_CASE("ufs: a host I/O error fails the CE command with CHECK CONDITION, writes nothing and "
          "leaks nothing",
          "[device][crypto][hostile][faults]") {
    // The LU's backing file behind blkdebug: EIO for every write at LBA 5 and every read at
    // LBA 6 (sector numbers in 512-byte units), everything else passes through.
    const qtest::TempDir tmp("icemu-blkdebug");
    const auto img = tmp / "lu0.img";
    {
        std::ofstream f(img, std::ios::binary | std::ios::trunc);
        const std::vector<char> zero(4u << 20, 0);
        f.write(zero.data(), static_cast<std::streamsize>(zero.size()));
    }
    const std::string rules = "inject-error.0.event=none,inject-error.0.iotype=write,"
                              "inject-error.0.errno=5,inject-error.0.sector=40,"
                              "inject-error.1.event=none,inject-error.1.iotype=read,"
                              "inject-error.1.errno=5,inject-error.1.sector=48";
    const bool staged = GENERATE(true, false);
    INFO((staged ? "staged" : "chunked (x-crypto-staging-size=0)"));
    UfsBox box(staged ? "" : "x-crypto-staging-size=0", {},
               "driver=blkdebug," + rules + ",image.driver=file,image.filename=" + img.string());
    auto& h = box.host();
    const auto key = ufs_cryptokey(77);
    const auto xts_key = models::xts_key_from_cryptokey(key, 256);
    ufs::program_keyslot(h, box.caps(), 2, key, 4096, 0);
    const auto plain = test::pattern_bytes(ufs::kLuBlockSize, 5);
    auto medium = [&](std::uint64_t lba) {
        std::ifstream f(img, std::ios::binary);
        f.seekg(static_cast<std::streamoff>(lba * ufs::kLuBlockSize));
        std::vector<std::uint8_t> out(ufs::kLuBlockSize);
        f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()));
        return out;
    };

    // the failing CE WRITE: the transfer completes, the command reports CHECK CONDITION, and
    // the medium keeps its zeros (neither ciphertext nor plaintext)
    const auto w = h.write(0, 5, plain, ufs::CryptoFields{true, 2, 5});
    CHECK(w.ocs == ufs::ocs::kSuccess);
    CHECK(w.scsi_status == 0x02);
    CHECK(medium(5) == std::vector<std::uint8_t>(ufs::kLuBlockSize, 0));

    // the failing CE READ: CHECK CONDITION, and nothing of the key's plaintext view leaks
    REQUIRE(h.write(0, 6, plain, ufs::CryptoFields{true, 2, 6}).scsi_status == 0);
    CHECK(medium(6) == models::xts_encrypt(xts_key, 6, 4096, plain));
    const auto r = h.read(0, 6, 1, ufs::CryptoFields{true, 2, 6});
    CHECK(r.ocs == ufs::ocs::kSuccess);
    CHECK(r.scsi_status == 0x02);
    CHECK(r.in != plain);

    // the engine is whole afterwards: nothing in flight, nothing staged, and the same key
    // still encrypts and decrypts next to the failing blocks
    const auto state = box.machine().qom_get("/machine/peripheral/ufs0", "crypto-state");
    INFO(state.dump());
    const auto w7 = h.write(0, 7, plain, ufs::CryptoFields{true, 2, 7});
    CHECK(w7.scsi_status == 0);
    CHECK(medium(7) == models::xts_encrypt(xts_key, 7, 4096, plain));
    const auto r7 = h.read(0, 7, 1, ufs::CryptoFields{true, 2, 7});
    CHECK(r7.scsi_status == 0);
    CHECK(r7.in == plain);
    CHECK(box.machine().alive());
}

TEST_CASE("cqhci: the bounce buffers a guest makes the controller hold stay within "
          "x-cqhci-bounce-budget, and every task still runs",
          "[device][cqhci][hostile][bounce]") {
    // Each started task holds a bounce buffer of its own size until it completes; QEMU traces
    // the bytes held at each start (cqhci_task_start) and each task that has to wait.
    struct Case {
        const char* what;
        std::string props;
        unsigned tasks;
        std::uint16_t blocks;
        bool expect_wait;
        std::uint64_t max_held; // bound on the largest "hold" the trace may show
        std::uint64_t min_peak; // the trace must show at least this much held at once
    };
    const std::uint64_t mib = 1u << 20;
    const auto c = GENERATE_COPY(
        // 8 tasks of 4 MiB rung at once, 8 MiB budget: two at a time, the others wait
        Case{"8 x 4 MiB, budget 8 MiB", "x-cqhci-bounce-budget=8M", 8, 8192, true, 8 * mib,
             8 * mib},
        // the same with room for all: they all start together (the trace sees concurrency)
        Case{"8 x 4 MiB, budget 64 MiB", "x-cqhci-bounce-budget=64M", 8, 8192, false, 32 * mib,
             32 * mib},
        // the default budget: 31 tasks of Linux's largest (512 KiB) request never wait
        Case{"31 x 512 KiB, default budget", "", 31, 1024, false, 31 * 512 * 1024,
             31 * 512 * 1024});
    INFO(c.what);

    std::string log;
    {
        cqhci_test::EmmcOptions o = cqhci_test::cq_options(false, c.props);
        o.medium_bytes = 64u << 20;
        o.trace = {"cqhci_task_*"};
        cqhci_test::EmmcRig r(o);
        auto& h = r.host();
        h.enable(false);
        std::uint32_t mask = 0;
        std::vector<std::vector<std::uint8_t>> written;
        for (unsigned tag = 0; tag < c.tasks; ++tag) {
            // each task writes its own range from its own guest buffer (first 4 KiB tagged)
            const auto head = test::pattern_bytes(4096, 1000 + tag);
            h.put_data(tag, head);
            written.push_back(head);
            h.prepare(cqhci_test::task(tag, true, tag * std::uint32_t{c.blocks}, c.blocks));
            mask |= 1u << tag;
        }
        h.ring(mask);
        CHECK(h.wait_tcn(mask) == mask);
        CHECK((h.rreg(reg::kIs) & (bits::kIsRed | bits::kIsGce | bits::kIsIcce)) == 0u);
        for (unsigned tag = 0; tag < c.tasks; ++tag) {
            INFO("task " << tag);
            CHECK(r.medium(std::uint64_t{tag} * c.blocks * 512, 4096) == written[tag]);
        }
        r.machine().shutdown();
        log = test::slurp(r.trace_path());
    }

    const std::regex start(
        R"(cqhci_task_start task (\d+): (\d+) bytes, bounce buffers hold (\d+))");
    std::uint64_t peak = 0;
    unsigned starts = 0;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), start);
         it != std::sregex_iterator(); ++it) {
        ++starts;
        CHECK(std::stoull((*it)[2]) == std::uint64_t{c.blocks} * 512);
        peak = std::max<std::uint64_t>(peak, std::stoull((*it)[3]));
    }
    CHECK(starts == c.tasks);
    CHECK(peak <= c.max_held);
    CHECK(peak >= c.min_peak);
    const bool waited = log.find("cqhci_task_wait") != std::string::npos;
    CHECK(waited == c.expect_wait);
}
