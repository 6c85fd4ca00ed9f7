// Unit tests for f2fs.hpp. The layouts are what f2fs-tools 1.15's mkfs.f2fs wrote (dump.f2fs
// "Device[i] : ... blkaddr = first--last" of image files of these sizes, 4096-byte blocks), not
// values computed by the model.
#include "icemu/models/f2fs.hpp"
#include "icemu/models/fscrypt.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace icemu::models;

namespace {
constexpr std::uint64_t MiB = 1024 * 1024;
// dump.f2fs's inclusive block range -> (start, length) in bytes
std::pair<std::uint64_t, std::uint64_t> blkaddr(std::uint64_t first, std::uint64_t last) {
    return {first * 4096, (last - first + 1) * 4096};
}
} // namespace

TEST_CASE("multi-device layout: devices follow each other in whole 2 MiB segments", "[f2fs]") {
    using V = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    // mkfs.f2fs -c b.img a.img, a = 64 MiB, b = 64 MiB: 0--3fff, 4000--7fff
    CHECK(f2fs::device_layout({64 * MiB, 64 * MiB}) ==
          V{blkaddr(0, 0x3fff), blkaddr(0x4000, 0x7fff)});
    // 16 MiB + 64 MiB: 0--fff, 1000--4fff
    CHECK(f2fs::device_layout({16 * MiB, 64 * MiB}) ==
          V{blkaddr(0, 0xfff), blkaddr(0x1000, 0x4fff)});
    // 65 MiB + 67 MiB (not segment multiples): 0--3fff, 4000--81ff
    CHECK(f2fs::device_layout({65 * MiB, 67 * MiB}) ==
          V{blkaddr(0, 0x3fff), blkaddr(0x4000, 0x81ff)});
}

TEST_CASE("s_maxbytes: a default policy's DUN fits in 4 bytes, as on ext4", "[f2fs]") {
    // max_file_blocks(): 2*1018 + 2*1018^2 + 1018^3 blocks = 1057052516, below 2^30 4096-byte
    // data units, so fscrypt_get_dun_bytes gives ceil(30 / 8) = 4 bytes.
    CHECK(f2fs::s_maxbytes() == 1057052516ull * 4096);
    CHECK(fscrypt::dun_bytes(fscrypt::Policy::v2_default, f2fs::s_maxbytes(), 12) == 4);
    // 512-byte data units: 33 bits, 5 bytes (more than a CQHCI's 4)
    CHECK(fscrypt::dun_bytes(fscrypt::Policy::v2_default, f2fs::s_maxbytes(), 9) == 5);
}
