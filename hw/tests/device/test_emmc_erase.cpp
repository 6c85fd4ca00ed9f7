// The eMMC's erase (CMD35/CMD36/CMD38) on the legacy bus: the erased range reads back as the
// card's EXT_CSD ERASED_MEM_CONT says (JESD84-B51: 0 = zeroes, 1 = ones), nothing outside it
// changes, and a whole multi-GiB card erases in one go (Linux discards whole devices at mkfs).
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "device/test_cqhci_rig.hpp"

using namespace icemu;
using namespace icemu::cqhci_test;
using icemu::cqhci::Resp;
namespace mmc = icemu::cqhci::mmc;

namespace {

// JESD84-B51 command indexes and fields used here.
constexpr unsigned kSendExtCsd = 8, kEraseGroupStart = 35, kEraseGroupEnd = 36, kErase = 38;
constexpr std::size_t kErasedMemCont = 181; // EXT_CSD byte
// R1 card status bits an erase can set: OUT_OF_RANGE, ADDRESS_ERROR, ERASE_SEQ_ERROR,
// ERASE_PARAM, WP_VIOLATION, WP_ERASE_SKIP
constexpr std::uint32_t kEraseErrors =
    (1u << 31) | (1u << 30) | (1u << 28) | (1u << 27) | (1u << 26) | (1u << 15);
constexpr std::uint8_t kFill = 0x5a;

bool all_are(const std::vector<std::uint8_t>& v, std::uint8_t b) {
    return std::all_of(v.begin(), v.end(), [b](std::uint8_t x) { return x == b; });
}

} // namespace

TEST_CASE("emmc: an erased range reads as EXT_CSD ERASED_MEM_CONT says, and only that range",
          "[device][emmc][erase]") {
    // 8 MiB: a byte-addressed card; 4 GiB: sector-addressed (densities above 2 GB)
    const bool big = GENERATE(false, true);
    INFO((big ? "4 GiB card, sector addresses" : "8 MiB card, byte addresses"));
    EmmcOptions o = cq_options(false);
    o.medium_bytes = big ? (std::size_t{4} << 30) : kMediumBytes;
    EmmcRig rig(o);
    auto& h = rig.host();

    // 40 sectors of a fill pattern around the range [first, last] = 16 sectors
    const std::uint64_t first = big ? (std::uint64_t{2} << 30) / 512 - 8 : 1000;
    const std::uint64_t last = first + 15;
    const std::vector<std::uint8_t> fill((last - first + 1 + 24) * 512, kFill);
    rig.put_medium((first - 12) * 512, fill);

    REQUIRE(h.init_card(false));
    const auto ext_csd = h.pio_read(kSendExtCsd, 0, 1);
    REQUIRE(ext_csd);
    REQUIRE(ext_csd->size() == 512);
    const std::uint8_t erased = (*ext_csd)[kErasedMemCont] ? 0xff : 0x00;

    const auto addr = [big](std::uint64_t sector) {
        return static_cast<std::uint32_t>(big ? sector : sector * 512);
    };
    REQUIRE(h.command(kEraseGroupStart, addr(first), Resp::r1));
    REQUIRE(h.command(kEraseGroupEnd, addr(last), Resp::r1));
    REQUIRE(h.command(kErase, 0, Resp::r1b));
    const auto status = h.command(mmc::kStatus, mmc::kRca << 16, Resp::r1);
    REQUIRE(status);
    CHECK((*status & kEraseErrors) == 0u);

    CHECK(all_are(rig.medium(first * 512, (last - first + 1) * 512), erased));
    CHECK(all_are(rig.medium((first - 12) * 512, 12 * 512), kFill));
    CHECK(all_are(rig.medium((last + 1) * 512, 12 * 512), kFill));

    if (big) {
        // the whole card, as mkfs's discard does: one erase of 8 Mi sectors
        REQUIRE(h.command(kEraseGroupStart, 0, Resp::r1));
        REQUIRE(h.command(kEraseGroupEnd, static_cast<std::uint32_t>(o.medium_bytes / 512 - 1),
                          Resp::r1));
        REQUIRE(h.command(kErase, 0, Resp::r1b));
        const auto st = h.command(mmc::kStatus, mmc::kRca << 16, Resp::r1);
        REQUIRE(st);
        CHECK((*st & kEraseErrors) == 0u);
        CHECK(all_are(rig.medium((first - 12) * 512, fill.size()), erased));
        CHECK(all_are(rig.medium(o.medium_bytes - 4096, 4096), erased));
    }
}
