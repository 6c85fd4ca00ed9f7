// Seeded randomized differential test of the CQHCI crypto engine (sdhci-pci,cqhci=on,crypto=on)
// against the reference model: random keyslot programming (valid configs with random data-unit
// sizes, invalid raw configs) and eviction, batches of 1-4 queued tasks (distinct tags, random
// sectors, lengths and transfer-descriptor sizes) with CE on/off, random CCI and random 32-bit
// DUNs, CGE and CFG.ENABLE toggles, injected faults (non-fatal and fatal), Software Reset For All;
// after every batch each task's fate (TCN, ICCE + TDPE, GCE + TERRI), the bytes read back and the
// bytes on the medium are compared with the model. Failed batches are recovered the way Linux
// does it (halt, CMD12, CMD48, clear all); a fatal fault is followed by the reset-all Linux's card
// reset performs.
//
// The model is models/ufshci_crypto.hpp's Engine, fed the CQHCI's equivalents: CQHCI_CFG bits 0
// (ENABLE) and 1 (CRYPTO_GENERAL_ENABLE) are HCE bits 0 and 1, x-CRYPTOCFG dwords go to the same
// slot/dword of the model's array, OCS 0x9 is ICCE and OCS 0xA is GCE; wipe_on_disable is off
// (CQHCI keeps keys across CFG.ENABLE 1 -> 0). ICEMU_SEED overrides the seed, ICEMU_CQHCI_OPS
// the number of operations.
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "device/differential.hpp"
#include "device/test_cqhci_rig.hpp"
#include "icemu/models/ufshci_crypto.hpp"

using namespace icemu;
using namespace icemu::cqhci_test;
namespace reg = cqhci::reg;
namespace bits = cqhci::bits;
namespace sdhci = cqhci::sdhci;
namespace mu = icemu::models::ufshci;
using icemu::test::env_u64;

namespace {

constexpr std::uint64_t kDefaultSeed = 0xc0c1e5eedull;
constexpr std::size_t kDefaultOps = 3000;
constexpr std::uint32_t kAreaSectors = 4096; // the first 2 MiB of the eMMC
constexpr unsigned kSlots = 8;
constexpr const char* kCaps = "aes-xts-256:0x1f/aes-xts-128:0x0f/aes-ecb-256:0x0f";
constexpr const char* kDev = "/machine/peripheral/sd0";

enum class Fate { done, icce, gce, not_fetched };

const char* fate_name(Fate f) {
    switch (f) {
    case Fate::done:
        return "done";
    case Fate::icce:
        return "ICCE";
    case Fate::gce:
        return "GCE";
    default:
        return "not fetched";
    }
}

class Driver {
public:
    Driver(EmmcRig& r, std::uint64_t seed)
        : r_(r), h_(r.host()), rng_(seed), model_(model_config()),
          medium_(std::size_t{kAreaSectors} * cqhci::kBlock, 0) {
        REQUIRE(h_.init_card(true));
        enable(true);
        std::ostringstream d;
        for (unsigned s = 0; s < kSlots; ++s) {
            program(d, s);
        }
    }

    std::string step(std::string& divergence) {
        const auto p = static_cast<unsigned>(pick(1000));
        std::ostringstream d;
        if (p < 110) {
            program(d);
        } else if (p < 140) {
            const auto slot = static_cast<unsigned>(pick(kSlots));
            d << "evict slot " << slot;
            h_.evict_keyslot(slot);
            mirror_slot(slot, std::array<std::uint8_t, 64>{}, 0);
        } else if (p < 160) {
            inject(d);
        } else if (p < 172) {
            const bool cge = pick(6) != 0;
            d << "CFG.CGE <- " << cge;
            write_cfg((h_.rreg(reg::kCfg) & ~bits::kCfgCge) | (cge ? bits::kCfgCge : 0u));
        } else if (p < 180) {
            d << "CFG.ENABLE 1->0->1";
            const std::uint32_t cfg = h_.rreg(reg::kCfg);
            write_cfg(cfg & ~bits::kCfgEnable);
            if (pick(2) == 0) {
                program(d);
            }
            write_cfg(cfg | bits::kCfgEnable);
        } else if (p < 186) {
            d << "reset-all";
            reset_all();
            if (pick(2) == 0) {
                program(d);
            }
        } else if (p < 200) {
            d << "compare the medium";
            compare_medium(divergence);
        } else {
            batch(d, divergence);
        }
        return d.str();
    }

    void compare_medium(std::string& divergence) {
        const auto got = r_.medium(0, medium_.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            if (got[i] != medium_[i]) {
                divergence = "medium byte " + std::to_string(i) + " (sector " +
                             std::to_string(i / 512) + ") differs from the model";
                return;
            }
        }
    }

    std::map<std::string, std::size_t> counts;

private:
    static mu::Config model_config() {
        mu::Config c;
        c.slots = kSlots;
        c.caps = mu::parse_crypto_caps(kCaps);
        c.wipe_on_disable = false;
        return c;
    }

    std::uint64_t pick(std::uint64_t n) {
        return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
    }

    // CQHCI_CFG write, mirrored as an HCE write (ENABLE = bit 0, CGE = bit 1)
    void write_cfg(std::uint32_t cfg) {
        h_.wreg(reg::kCfg, cfg);
        cge_ = (cfg & bits::kCfgCge) != 0;
        model_.write(mu::kRegHce, cfg & (bits::kCfgEnable | bits::kCfgCge));
    }

    void enable(bool cge) {
        h_.enable(cge);
        const std::uint32_t c = cge ? bits::kCfgCge : 0u;
        model_.write(mu::kRegHce, c);
        model_.write(mu::kRegHce, c | bits::kCfgEnable);
        cge_ = cge;
    }

    // The model sees the same 19 writes as the device (dword 16 = 0, key, dword 17, dword 16).
    void mirror_slot(unsigned slot, const std::array<std::uint8_t, 64>& key, std::uint32_t dw16) {
        const std::uint32_t base = mu::kCfgBase + slot * mu::kCfgSlotBytes;
        model_.write(base + 0x40, 0);
        for (unsigned i = 0; i < 16; ++i) {
            model_.write(base + 4 * i, std::uint32_t{key[4 * i]} |
                                           std::uint32_t{key[4 * i + 1]} << 8 |
                                           std::uint32_t{key[4 * i + 2]} << 16 |
                                           std::uint32_t{key[4 * i + 3]} << 24);
        }
        model_.write(base + 0x44, 0);
        model_.write(base + 0x40, dw16);
    }

    void program(std::ostringstream& d) { program(d, static_cast<unsigned>(pick(kSlots))); }

    void program(std::ostringstream& d, unsigned slot) {
        std::array<std::uint8_t, 64> key{};
        for (auto& b : key) {
            b = static_cast<std::uint8_t>(pick(256));
        }
        const auto& caps = model_.config().caps;
        std::uint32_t dw16;
        if (pick(8) == 0) {
            dw16 =
                static_cast<std::uint32_t>((1u << 31) | (pick(caps.size() + 2) << 8) | pick(256));
            d << " program slot " << slot << " raw dword16 " << std::hex << dw16 << std::dec;
        } else {
            std::vector<unsigned> usable;
            for (unsigned i = 0; i < caps.size(); ++i) {
                if (caps[i].implemented()) {
                    usable.push_back(i);
                }
            }
            const unsigned capidx = usable.at(pick(usable.size()));
            std::vector<std::uint32_t> dus;
            for (unsigned j = 0; j < 8; ++j) {
                if (caps[capidx].sdusb & (1u << j)) {
                    dus.push_back(512u << j);
                }
            }
            const auto du = dus.at(pick(dus.size()));
            dw16 = (1u << 31) | (capidx << 8) | (du / 512);
            d << " program slot " << slot << " cap " << capidx << " du " << du;
        }
        h_.write_keyslot(slot, key, dw16);
        mirror_slot(slot, key, dw16);
    }

    void inject(std::ostringstream& d) {
        const bool fatal = pick(4) == 0;
        const auto count = static_cast<std::uint32_t>(fatal ? 1 : 1 + pick(3));
        d << "inject " << count << " fault(s)" << (fatal ? " fatal" : "");
        r_.machine().qom_set(kDev, "crypto-fault-fatal", fatal);
        r_.machine().qom_set(kDev, "crypto-fault-count", count);
        model_.inject_faults(count, fatal);
    }

    // mmc_blk_reset's power cycle: CQHCI off, SDHCI Software Reset For All, card init, CQE on
    void reset_all() {
        h_.wreg(reg::kCfg, h_.rreg(reg::kCfg) & ~bits::kCfgEnable);
        h_.sdhci_reset(sdhci::kResetAll);
        model_.reset();
        REQUIRE(h_.init_card(true));
        enable(cge_ || pick(2) == 0);
        ++counts["reset-all"];
        if (pick(4) != 0) {
            // mmc_set_initial_state: blk_crypto_reprogram_all_keys
            std::ostringstream d;
            for (unsigned s = 0; s < kSlots; ++s) {
                program(d, s);
            }
        }
    }

    std::uint32_t random_dun() {
        static constexpr std::uint32_t special[] = {0, 1, 0xfffffff0u, 0xfffffffeu, 0xffffffffu};
        if (pick(3) == 0) {
            return special[pick(std::size(special))];
        }
        return static_cast<std::uint32_t>(rng_());
    }

    struct Planned {
        cqhci::Task task;
        mu::Request req;
        mu::Outcome out;
        Fate fate = Fate::done;
        std::vector<std::uint8_t> data; // written data
    };

    void batch(std::ostringstream& d, std::string& divergence) {
        const auto n = static_cast<unsigned>(1 + pick(4));
        std::vector<unsigned> tags;
        while (tags.size() < n) {
            const auto t = static_cast<unsigned>(pick(31));
            if (std::find(tags.begin(), tags.end(), t) == tags.end()) {
                tags.push_back(t);
            }
        }
        std::sort(tags.begin(), tags.end()); // the CQHCI fetches in tag order
        // non-overlapping sector ranges: split the area into n windows (multiples of 16 sectors,
        // so that 8 KiB-aligning a start keeps it in its window)
        const std::uint32_t window = (kAreaSectors / n) & ~15u;
        std::vector<unsigned> windows(n);
        for (unsigned i = 0; i < n; ++i) {
            windows[i] = i;
        }
        std::shuffle(windows.begin(), windows.end(), rng_);

        std::vector<Planned> plan;
        std::uint32_t mask = 0;
        bool dead = false;
        for (unsigned i = 0; i < n; ++i) {
            Planned pl;
            auto& t = pl.task;
            t.tag = tags[i];
            t.write = pick(2) == 0;
            t.blocks = static_cast<std::uint16_t>(1 + pick(pick(8) == 0 ? 64 : 16));
            const bool aligned = pick(3) != 0;
            if (aligned) {
                // whole 8 KiB units: every data unit size of the caps lines up
                t.blocks = static_cast<std::uint16_t>(16 * (1 + pick(4)));
            }
            t.lba = windows[i] * window + static_cast<std::uint32_t>(pick(window - t.blocks + 1));
            if (aligned) {
                t.lba &= ~15u;
            }
            t.crypto.ce = pick(100) < 85;
            if (t.crypto.ce) {
                t.crypto.cci = static_cast<std::uint8_t>(pick(20) == 0 ? pick(256) : pick(kSlots));
                t.crypto.dun = random_dun();
            }
            static constexpr std::uint32_t segs[] = {512, 1000, 3072, 4096, 0x10000};
            t.seg_bytes = segs[pick(std::size(segs))];
            const std::uint32_t len = std::uint32_t{t.blocks} * cqhci::kBlock;
            pl.req.ce = t.crypto.ce;
            pl.req.cci = t.crypto.cci;
            pl.req.dun = t.crypto.dun;
            pl.req.offset = std::uint64_t{t.lba} * cqhci::kBlock;
            pl.req.length = len;
            pl.req.kind = t.write ? mu::CommandKind::write : mu::CommandKind::read;
            if (dead) {
                pl.fate = Fate::not_fetched;
            } else {
                pl.out = model_.submit(pl.req);
                pl.fate = pl.out.ocs == mu::kOcsSuccess               ? Fate::done
                          : pl.out.ocs == mu::kOcsInvalidCryptoConfig ? Fate::icce
                                                                      : Fate::gce;
                dead = pl.out.fatal;
            }
            if (t.write) {
                pl.data.resize(len);
                for (auto& b : pl.data) {
                    b = static_cast<std::uint8_t>(rng_());
                }
                h_.put_data(t.tag, pl.data);
            } else {
                r_.machine().memset(h_.data_addr(t.tag), len, 0xee);
            }
            h_.prepare(t);
            mask |= 1u << t.tag;
            d << (i ? "; " : "") << "tag " << t.tag << (t.write ? " W" : " R") << " lba " << t.lba
              << " n " << t.blocks << " seg " << t.seg_bytes;
            if (t.crypto.ce) {
                d << " CE cci " << int{t.crypto.cci} << " dun " << t.crypto.dun;
            }
            d << " -> " << fate_name(pl.fate) << (pl.out.fatal ? " (fatal)" : "");
            plan.push_back(std::move(pl));
        }

        std::uint32_t expect_done = 0, expect_icce = 0, expect_owned = 0;
        int first_gce = -1;
        for (const auto& pl : plan) {
            const std::uint32_t bit = 1u << pl.task.tag;
            if (pl.fate == Fate::done) {
                expect_done |= bit;
            } else {
                expect_owned |= bit;
            }
            if (pl.fate == Fate::icce) {
                expect_icce |= bit;
            }
            if (pl.fate == Fate::gce && first_gce < 0) {
                first_gce = static_cast<int>(pl.task.tag);
            }
        }
        h_.ring(mask);
        const std::uint32_t tcn = h_.wait_tcn(expect_done, 0);
        if (expect_owned != 0) {
            // let the failing tasks report before comparing (errors are raised at fetch time)
            for (int i = 0; i < 1000; ++i) {
                const std::uint32_t is = h_.rreg(reg::kIs);
                if (((is & bits::kIsIcce) != 0) == (expect_icce != 0) &&
                    ((is & bits::kIsGce) != 0) == (first_gce >= 0)) {
                    break;
                }
            }
        }
        std::ostringstream why;
        const std::uint32_t got_tcn = h_.rreg(reg::kTcn) & mask;
        const std::uint32_t is = h_.rreg(reg::kIs);
        const std::uint32_t tdbr = h_.rreg(reg::kTdbr) & mask;
        const std::uint32_t tdpe = h_.rreg(reg::kTdpe);
        const std::uint32_t terri = h_.rreg(reg::kTerri);
        if (tcn != expect_done || got_tcn != expect_done) {
            why << "TCN 0x" << std::hex << got_tcn << " expected 0x" << expect_done << "; ";
        }
        if (tdbr != expect_owned) {
            why << "TDBR 0x" << std::hex << tdbr << " expected 0x" << expect_owned << "; ";
        }
        if (tdpe != expect_icce || ((is & bits::kIsIcce) != 0) != (expect_icce != 0)) {
            why << "TDPE 0x" << std::hex << tdpe << " IS 0x" << is << " expected ICCE for 0x"
                << expect_icce << "; ";
        }
        if (((is & bits::kIsGce) != 0) != (first_gce >= 0) ||
            (first_gce >= 0 && ((terri & bits::kTerriDValid) == 0 ||
                                static_cast<int>((terri >> 24) & 0x1f) != first_gce))) {
            why << "IS 0x" << std::hex << is << " TERRI 0x" << terri << " expected GCE for task "
                << std::dec << first_gce << "; ";
        }
        h_.ack(got_tcn);
        for (const auto& pl : plan) {
            if (pl.fate != Fate::done) {
                continue;
            }
            const auto off = static_cast<std::size_t>(pl.req.offset);
            if (pl.task.write) {
                const auto bytes = model_.medium_bytes(pl.req, pl.out, pl.data);
                std::copy(bytes.begin(), bytes.end(), medium_.begin() + static_cast<long>(off));
            } else {
                const models::ByteView raw(medium_.data() + off, pl.req.length);
                const auto want = model_.host_bytes(pl.req, pl.out, raw);
                const auto got = h_.get_data(pl.task.tag, pl.req.length);
                if (!std::equal(want.begin(), want.end(), got.begin(), got.end())) {
                    why << "tag " << std::dec << pl.task.tag << " read data differs; ";
                }
            }
            ++counts[pl.task.crypto.ce ? (pl.task.write ? "CE write" : "CE read") : "plain"];
        }
        for (const auto& pl : plan) {
            if (pl.fate != Fate::done) {
                ++counts[std::string(pl.task.crypto.ce ? "CE " : "") + fate_name(pl.fate)];
            }
        }
        if (expect_owned != 0) {
            recover(dead);
        }
        if (h_.rreg(reg::kTdbr) != 0 || h_.rreg(reg::kIs) != 0) {
            why << "after the batch TDBR 0x" << std::hex << h_.rreg(reg::kTdbr) << " IS 0x"
                << h_.rreg(reg::kIs) << "; ";
        }
        divergence = why.str();
    }

    void recover(bool fatal) {
        const auto rec = h_.recover();
        const std::uint32_t cfg = h_.rreg(reg::kCfg);
        model_.write(mu::kRegHce, cfg & bits::kCfgCge);
        model_.write(mu::kRegHce, cfg & (bits::kCfgCge | bits::kCfgEnable));
        ++counts["recovery"];
        if (fatal) {
            // CMD48 timed out: Linux resets the card (power cycle = reset-all)
            CHECK_FALSE(rec.cmd48);
            reset_all();
            ++counts["fatal"];
        } else {
            CHECK(rec.cmd48);
        }
    }

    EmmcRig& r_;
    cqhci::CqhciHost& h_;
    std::mt19937_64 rng_;
    mu::Engine model_;
    std::vector<std::uint8_t> medium_;
    bool cge_ = true;
};

} // namespace

TEST_CASE("cqhci randomized differential run: device and model agree on every task",
          "[device][cqhci][crypto][differential]") {
    const std::uint64_t seed = env_u64("ICEMU_SEED", kDefaultSeed);
    const std::size_t ops = env_u64("ICEMU_CQHCI_OPS", kDefaultOps);
    UNSCOPED_INFO("seed " << seed << " (rerun with ICEMU_SEED=" << seed << ")");
    std::cout << "cqhci differential: seed " << seed << " (ICEMU_SEED), " << ops
              << " operations (ICEMU_CQHCI_OPS)" << std::endl;

    EmmcRig r(cq_options(true, std::string("crypto-keyslots=") + std::to_string(kSlots) +
                                   ",crypto-caps=" + kCaps));
    Driver drv(r, seed);
    test::run_differential(drv, seed, ops);
    std::string divergence;
    drv.compare_medium(divergence);
    CHECK(divergence.empty());
    std::ostringstream summary;
    summary << "cqhci differential: seed " << seed << ", " << ops << " operations (";
    for (const auto& [k, n] : drv.counts) {
        summary << k << ": " << n << "; ";
    }
    summary << ")";
    std::cout << summary.str() << std::endl;
    // every outcome class must have been exercised for the run to mean something
    CHECK(drv.counts["plain"] > 0);
    CHECK(drv.counts["CE write"] > 0);
    CHECK(drv.counts["CE read"] > 0);
    CHECK(drv.counts["CE ICCE"] > 0);
    CHECK(drv.counts["CE GCE"] > 0);
    CHECK(drv.counts["fatal"] > 0);
    CHECK(drv.counts["reset-all"] > 0);
}
