// f2fs: what F2FS does with the block devices under it that the checker needs.
//
// Models:
//   - the block address space of a multi-device F2FS (mkfs.f2fs -c DEV ... MAIN; f2fs-tools
//     1.15 mkfs/f2fs_format.c f2fs_prepare_super_block, read back by the kernel from
//     raw_super->devs[] in fs/f2fs/super.c f2fs_scan_devices): the devices follow each other
//     in the order main, then the -c devices; each one takes a whole number of segments
//     (2 MiB with 4096-byte blocks and the default 512 blocks per segment), so device i
//     covers [start_i, start_i + floor(size_i / 2 MiB) * 2 MiB) of the filesystem's byte
//     addresses (for the main device the segment-aligned area before segment 0 counts too,
//     which keeps the same rule). FIEMAP reports physical offsets in that space
//     (fs/f2fs/data.c f2fs_fiemap: blks_to_bytes of the block address);
//   - s_maxbytes (fs/f2fs/super.c max_file_blocks(NULL) << log_blocksize): 2 direct, 2
//     indirect and 1 double-indirect node blocks of 1018 addresses (4096-byte blocks), capped
//     at U32_MAX + 1 4096-byte data units for IV_INO_LBLK_* policies; what fscrypt's DUN width
//     of a default policy is computed from (fscrypt_get_dun_bytes).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace icemu::models::f2fs {

inline constexpr std::uint64_t kBlockBytes = 4096;
inline constexpr std::uint64_t kSegmentBytes = 512 * kBlockBytes; ///< log_blocks_per_seg 9

/// (start, length) in bytes of each device in the filesystem's address space, for devices of
/// `sizes` bytes in mkfs order (main first). A device smaller than one segment gets length 0.
std::vector<std::pair<std::uint64_t, std::uint64_t>>
device_layout(const std::vector<std::uint64_t>& sizes);

/// sb->s_maxbytes of an F2FS with 4096-byte blocks.
std::uint64_t s_maxbytes();

} // namespace icemu::models::f2fs
