// Seeded randomized differential test: >= 10,000 mixed operations (programs, overwrites,
// evicts, raw invalid configs, CE/non-CE I/O with random CCI/DUN (including DUNs whose units
// cross 2^32 and 2^64)/length/PRDT shape, CGE and HCE toggles, injected faults) on two controllers
// (legacy doorbell and MCQ) in one QEMU, each checked against the reference model: OCS, IS.CEFES,
// bytes read, bytes on the medium. ICEMU_SEED overrides the seed, ICEMU_DIFF_OPS the number of
// operations.
#include <catch2/catch_test_macros.hpp>

#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "device/differential.hpp"
#include "device/modelled_rig.hpp"

using namespace icemu;
using test::CryptoOptions;
using test::env_u64;
using test::ModelledRig;
namespace mu = icemu::models::ufshci;

namespace {

constexpr std::uint64_t kDefaultSeed = 0x1ce5eed2026ull;
constexpr std::size_t kDefaultOps = 10000;
constexpr std::size_t kLuBytes = 2u << 20;
constexpr std::uint64_t kLuBlocks = kLuBytes / ufs::kLuBlockSize;

class Driver {
public:
    Driver(ModelledRig& r, std::uint64_t seed) : r_(r), rng_(seed) {}

    // Runs one random operation; returns a description and fills `divergence` on a mismatch.
    std::string step(std::string& divergence) {
        const std::size_t ctrl = pick(2);
        const unsigned p = static_cast<unsigned>(pick(1000));
        std::ostringstream d;
        d << "ctrl " << ctrl << ": ";
        if (p < 100) {
            program(ctrl, d);
        } else if (p < 130) {
            const auto slot = static_cast<unsigned>(pick(r_.caps(ctrl).keyslots));
            d << "evict slot " << slot;
            r_.evict(ctrl, slot);
        } else if (p < 145) {
            faults(ctrl, d);
        } else if (p < 150) {
            const bool cge = pick(4) != 0;
            d << "HCE <- HCE|" << (cge ? "CGE" : "0");
            r_.host(ctrl).wreg(ufs::reg::kHce, ufs::bits::kHceHce | (cge ? ufs::bits::kHceCge : 0));
        } else if (p < 153) {
            d << "HCE 1->0->1";
            r_.host(ctrl).disable();
            if (pick(2) == 0) {
                program(ctrl, d); // Linux reprograms keys while disabled
            }
            r_.rig().bring_up(ctrl);
        } else if (p < 160) {
            d << "compare the whole medium";
            const auto m = r_.compare_medium(ctrl, 0);
            if (!m.empty()) {
                divergence = "medium differs from the model: " + m;
            }
        } else {
            io(ctrl, p < 580, d, divergence);
        }
        return d.str();
    }

private:
    std::uint64_t pick(std::uint64_t n) {
        return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
    }

    void program(std::size_t ctrl, std::ostringstream& d) {
        const auto& caps = r_.caps(ctrl);
        const auto slot = static_cast<unsigned>(pick(caps.keyslots));
        std::array<std::uint8_t, 64> key{};
        for (auto& b : key) {
            b = static_cast<std::uint8_t>(pick(256));
        }
        if (pick(8) == 0) {
            // Any dword 16 with CFGE set: mostly invalid configurations.
            const auto dw16 =
                static_cast<std::uint32_t>(ufs::kCfgEnable | (pick(caps.cc + 2) << 8) | pick(256));
            d << "program slot " << slot << " raw dword16 " << std::hex << dw16 << std::dec;
            r_.program_raw(ctrl, slot, key, dw16);
            return;
        }
        // A valid config: an implemented cap and one of its data unit sizes.
        std::vector<unsigned> usable;
        for (unsigned i = 0; i < caps.cc; ++i) {
            const auto& c = caps.caps[i];
            if (c.algid == ufs::kAlgAesXts && (c.ks == ufs::kKs128 || c.ks == ufs::kKs256) &&
                c.sdusb != 0) {
                usable.push_back(i);
            }
        }
        const unsigned capidx = usable.at(pick(usable.size()));
        std::vector<std::uint32_t> dus;
        for (unsigned j = 0; j < 8; ++j) {
            if (caps.caps[capidx].sdusb & (1u << j)) {
                dus.push_back(512u << j);
            }
        }
        const auto du = dus.at(pick(dus.size()));
        d << "program slot " << slot << " cap " << capidx << " du " << du;
        r_.program(ctrl, slot, key, du, static_cast<std::uint8_t>(capidx));
    }

    // Arms N injected faults; the random requests that follow consume them (the model and
    // docs/device.md agree that a fault is taken before the other crypto checks).
    void faults(std::size_t ctrl, std::ostringstream& d) {
        const auto count = static_cast<std::uint32_t>(1 + pick(3));
        const bool fatal = pick(2) == 0;
        d << "inject " << count << " fault(s)" << (fatal ? " fatal" : "");
        r_.inject_faults(ctrl, count, fatal);
    }

    std::uint64_t random_dun() {
        static constexpr std::uint64_t special[] = {0,
                                                    1,
                                                    0xfffffffeull,
                                                    0xffffffffull,
                                                    0x100000000ull,
                                                    0xfffffffffffffff0ull,
                                                    0xffffffffffffffffull};
        if (pick(3) == 0) {
            return special[pick(std::size(special))];
        }
        return rng_();
    }

    void io(std::size_t ctrl, bool write, std::ostringstream& d, std::string& divergence) {
        const auto& caps = r_.caps(ctrl);
        std::uint32_t blocks = static_cast<std::uint32_t>(1 + pick(pick(10) == 0 ? 32 : 6));
        std::uint64_t lba = pick(kLuBlocks - blocks + 1);
        if (pick(2) == 0) {
            lba &= ~std::uint64_t{1}; // even LBAs make 8 KiB units line up more often
        }
        const std::uint32_t len = blocks * ufs::kLuBlockSize;
        ufs::CryptoFields cf;
        cf.ce = pick(100) < 85;
        if (cf.ce) {
            cf.cci = static_cast<std::uint8_t>(pick(20) == 0 ? pick(256) : pick(caps.keyslots));
            cf.dun = random_dun();
        }
        std::vector<std::uint32_t> segs;
        if (pick(2) == 0) {
            std::uint32_t left = len;
            while (left > 0) {
                const auto n = static_cast<std::uint32_t>(
                    std::min<std::uint64_t>(left, 1 + pick(pick(3) == 0 ? 64 : 9000)));
                segs.push_back(n);
                left -= n;
            }
            if (segs.size() > 1000) {
                segs.clear();
            }
        }
        d << (write ? "WRITE" : "READ") << " lba " << lba << " blocks " << blocks;
        if (cf.ce) {
            d << " CE cci " << int{cf.cci} << " dun " << cf.dun;
        }
        d << " prdt " << (segs.empty() ? std::string("4K") : std::to_string(segs.size()));
        test::IoCheck c;
        if (write) {
            std::vector<std::uint8_t> data(len);
            for (auto& b : data) {
                b = static_cast<std::uint8_t>(rng_());
            }
            c = r_.write(ctrl, 0, lba, data, cf, segs);
        } else {
            c = r_.read(ctrl, 0, lba, blocks, cf, segs);
        }
        d << " -> " << ufs::ocs_name(c.got.ocs);
        divergence = c.divergence;
        ++ios_;
        ++ocs_counts_[cf.ce ? c.got.ocs : 0x100];
    }

    ModelledRig& r_;
    std::mt19937_64 rng_;

public:
    std::size_t ios_ = 0;
    std::map<unsigned, std::size_t> ocs_counts_; // CE requests by OCS; 0x100 = CE=0 requests
};

} // namespace

TEST_CASE("randomized differential run: the device matches the model on every operation",
          "[device][crypto][differential]") {
    const std::uint64_t seed = env_u64("ICEMU_SEED", kDefaultSeed);
    const std::size_t ops = env_u64("ICEMU_DIFF_OPS", kDefaultOps);
    UNSCOPED_INFO("seed " << seed << " (rerun with ICEMU_SEED=" << seed << ")");

    CryptoOptions a;
    a.id = "ufs0";
    a.slots = 8;
    a.caps = "aes-xts-256:0x1f/aes-xts-128:0x0f/aes-ecb-256:0x0f";
    a.lu_bytes = kLuBytes;
    CryptoOptions b;
    b.id = "ufs1";
    b.slots = 5;
    b.caps = "aes-xts-128:0x09/aes-xts-256:0x03";
    b.mcq = true;
    b.wipe_on_disable = false;
    b.lu_bytes = kLuBytes;
    ModelledRig r({test::crypto_controller(a), test::crypto_controller(b)});
    Driver drv(r, seed);

    test::run_differential(drv, seed, ops);
    CHECK(r.compare_medium(0, 0).empty());
    CHECK(r.compare_medium(1, 0).empty());
    std::ostringstream summary;
    summary << "differential: seed " << seed << ", " << ops << " operations, " << drv.ios_
            << " I/O (";
    for (const auto& [ocs, n] : drv.ocs_counts_) {
        summary << (ocs == 0x100 ? std::string("CE=0")
                                 : "CE " + ufs::ocs_name(static_cast<std::uint8_t>(ocs)))
                << ": " << n << "; ";
    }
    summary << ")";
    std::cout << summary.str() << std::endl;
    // Every outcome class must have been exercised for the run to mean something.
    CHECK(drv.ocs_counts_[0x100] > 0);
    CHECK(drv.ocs_counts_[ufs::ocs::kSuccess] > 0);
    CHECK(drv.ocs_counts_[ufs::ocs::kInvalidCryptoConfig] > 0);
    CHECK(drv.ocs_counts_[ufs::ocs::kGeneralCryptoError] > 0);
}
