// f2fs: see f2fs.hpp.
#include "icemu/models/f2fs.hpp"

#include <algorithm>

namespace icemu::models::f2fs {

std::vector<std::pair<std::uint64_t, std::uint64_t>>
device_layout(const std::vector<std::uint64_t>& sizes) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    std::uint64_t start = 0;
    for (const std::uint64_t sz : sizes) {
        const std::uint64_t len = sz / kSegmentBytes * kSegmentBytes;
        out.emplace_back(start, len);
        start += len;
    }
    return out;
}

std::uint64_t s_maxbytes() {
    constexpr std::uint64_t addrs = 1018; // DEF_ADDRS_PER_BLOCK, 4096-byte blocks
    constexpr std::uint64_t nids = 1018;  // NIDS_PER_BLOCK
    std::uint64_t leaf = addrs, blocks = 2 * leaf;
    leaf *= nids;
    blocks += 2 * leaf;
    leaf *= nids;
    blocks += leaf;
    blocks = std::min<std::uint64_t>(blocks, ((1ull << 32) * 4096) / kBlockBytes);
    return blocks * kBlockBytes;
}

} // namespace icemu::models::f2fs
