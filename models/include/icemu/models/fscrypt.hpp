// fscrypt: the key bytes and DUNs fscrypt hands to blk-crypto for v2 policies with raw keys,
// so a checker can predict what the device must be programmed with and what DUN it must see.
//
// Models (fs/crypto/ of Linux 6.12, unchanged in 7.3 for raw keys; line numbers below are
// 7.3.4):
//   - HKDF-SHA512 (RFC 5869): Extract with a salt of 64 zero bytes over the master key
//     (hkdf.c:50-58); Expand with info' = "fscrypt\0" || context byte || info (hkdf.c:72-100);
//   - contexts (fscrypt_private.h:384-392): 1 key identifier (info empty, 16 bytes), 2 per-file
//     key (info = 16-byte file nonce), 4 IV_INO_LBLK_64 key and 6 IV_INO_LBLK_32 key
//     (info = mode number || 16-byte fs UUID, keysetup.c:220-283), 7 inode hash key (info empty,
//     16 bytes, used as a SipHash key of two little-endian u64 words, keysetup.c:303-315);
//   - contents mode AES-256-XTS = mode number 1, key size 64 (keysetup.c:17-25);
//   - hashed_ino = (u32) SipHash-2-4(key, le64(ino)) (siphash_1u64, keysetup.c:316-324);
//   - DUN (fscrypt_generate_iv, crypto.c:81-99): index = file data-unit index
//     (lblk << (blkbits - du_bits)); default: index; IV_INO_LBLK_64: ino << 32 | index;
//     IV_INO_LBLK_32: (u32)(hashed_ino + index);
//   - dun bytes (block.c:35-53): LBLK_64 8, LBLK_32 4, default ceil((fls64(s_maxbytes-1) -
//     du_bits) / 8).
//   - v1 policies (keysetup_v1.c setup_v1_file_key_derived): the per-file key is the first
//     keysize bytes of the master key encrypted with AES-128-ECB under the 16-byte file nonce
//     (the master key must be at least keysize bytes, keysetup.c fscrypt_valid_master_key_size);
//     the DUN is the data-unit index, as for the v2 default (crypto.c fscrypt_generate_iv), and
//     every regular file of a block-based filesystem goes through blk-crypto whatever the policy
//     version (fscrypt_private.h fscrypt_using_inline_encryption: S_ISREG && is_block_based);
//   - DIRECT_KEY (policy.c supported_direct_key_modes, for v1 and v2): the contents and
//     filenames modes must be the same and the mode's IV at least offsetofend(union
//     fscrypt_iv, nonce) = 24 bytes (the nonce goes into the IV, block.c fscrypt_get_dun_bytes);
//     of the valid pairs (policy.c fscrypt_valid_enc_modes_v1/_v2) only Adiantum qualifies, so
//     AES-256-XTS (IV 16 bytes, keysetup.c fscrypt_modes[]) can never be DIRECT_KEY: no
//     DIRECT_KEY key or DUN reaches an AES-XTS engine and none is modelled.
// Invariants: IV_INO_LBLK_* require ino and index <= U32_MAX (the kernel WARNs otherwise;
// here std::invalid_argument). Hardware-wrapped keys are in hw_wrapped.hpp.
#pragma once

#include "icemu/models/xts.hpp"

#include <array>
#include <cstdint>

namespace icemu::models::fscrypt {

inline constexpr std::uint8_t kModeAes256Xts = 1; ///< FSCRYPT_MODE_AES_256_XTS
inline constexpr std::size_t kAes256XtsKeyBytes = 64;
inline constexpr std::size_t kKeyIdentifierBytes = 16;
inline constexpr std::size_t kFileNonceBytes = 16;
inline constexpr std::size_t kUuidBytes = 16;

enum class HkdfContext : std::uint8_t {
    key_identifier = 1,
    per_file_enc_key = 2,
    direct_key = 3,
    iv_ino_lblk_64_key = 4,
    dirhash_key = 5,
    iv_ino_lblk_32_key = 6,
    inode_hash_key = 7,
    key_identifier_for_hw_wrapped_key = 8, ///< 7.x only
};

enum class HashAlg { sha256, sha512 };

/// Plain RFC 5869 HKDF (Crypto++ HKDF<H>); `length` <= 255 * hash size.
Bytes hkdf(HashAlg alg, ByteView ikm, ByteView salt, ByteView info, std::size_t length);

/// fscrypt's HKDF-SHA512: zero salt, info' = "fscrypt\0" || context || info.
Bytes fscrypt_hkdf(ByteView master_key, HkdfContext context, ByteView info, std::size_t length);

/// FS_IOC_ADD_ENCRYPTION_KEY's returned identifier (context 1, 16 bytes).
Bytes key_identifier(ByteView master_key);
/// Default v2 policy: the per-file AES-256-XTS key (context 2, info = file nonce).
Bytes per_file_key(ByteView master_key, ByteView file_nonce);
/// IV_INO_LBLK_64 / _32 per-filesystem keys (context 4 / 6, info = mode || fs UUID).
Bytes iv_ino_lblk_64_key(ByteView master_key, ByteView fs_uuid, std::uint8_t mode = kModeAes256Xts);
Bytes iv_ino_lblk_32_key(ByteView master_key, ByteView fs_uuid, std::uint8_t mode = kModeAes256Xts);

/// SipHash-2-4 key as two 64-bit words (k0 = bytes 0..7 LE, k1 = bytes 8..15 LE).
using SipKey = std::array<std::uint64_t, 2>;
SipKey sip_key_from_bytes(ByteView key16);
/// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012).
std::uint64_t siphash_2_4(const SipKey& key, ByteView message);
/// The inode hash key (context 7) of a master key.
SipKey inode_hash_key(ByteView master_key);
/// ci_hashed_ino for IV_INO_LBLK_32.
std::uint32_t hashed_ino(const SipKey& key, std::uint64_t ino);

/// v1 policy (no DIRECT_KEY): AES-128-ECB of the master key's first `key_bytes` bytes under the
/// 16-byte file nonce. Throws if the master key is shorter than `key_bytes` (the kernel refuses
/// to set up such a file) or `key_bytes` is not a multiple of 16.
Bytes v1_per_file_key(ByteView master_key, ByteView file_nonce,
                      std::size_t key_bytes = kAes256XtsKeyBytes);

/// FSCRYPT_MODE_* IV size in bytes (keysetup.c fscrypt_modes[].ivsize), 0 for unknown modes.
unsigned mode_iv_bytes(std::uint8_t mode);
/// Whether the kernel accepts (contents, filenames) for a policy of `version` (1 or 2)
/// (policy.c fscrypt_valid_enc_modes_v1 / _v2).
bool valid_modes(unsigned version, std::uint8_t contents, std::uint8_t filenames);
/// Whether a DIRECT_KEY policy with these modes is accepted (policy.c
/// supported_direct_key_modes on top of valid_modes).
bool direct_key_allowed(unsigned version, std::uint8_t contents, std::uint8_t filenames);

/// v2_default and v1 have the same DUN (the data-unit index); they differ in the key.
enum class Policy { v2_default, iv_ino_lblk_64, iv_ino_lblk_32, v1 };

/// The file data-unit index of logical block `lblk` (du_bits <= blkbits).
std::uint64_t data_unit_index(std::uint64_t lblk, unsigned blkbits, unsigned du_bits);
/// bc_dun[0] for a data unit (hashed_ino is used by IV_INO_LBLK_32 only).
std::uint64_t dun(Policy p, std::uint64_t du_index, std::uint64_t ino, std::uint32_t hashed_ino);
/// dun_bytes of the blk_crypto_key (`s_maxbytes` is the filesystem's, for the default policy).
unsigned dun_bytes(Policy p, std::uint64_t s_maxbytes, unsigned du_bits);

/// Everything needed to predict one file's inline-crypto traffic.
struct FileParams {
    Policy policy = Policy::v2_default;
    Bytes master_key;                       ///< raw master key, 32..64 bytes
    std::array<std::uint8_t, 16> fs_uuid{}; ///< sb->s_uuid (ext4 superblock UUID)
    std::array<std::uint8_t, 16> nonce{};   ///< the file's nonce (default and v1 policies)
    std::uint64_t ino = 0;
    unsigned blkbits = 12;
    unsigned du_bits = 12;
};

struct Expected {
    Bytes key;         ///< the 64-byte blk_crypto_key the device must be programmed with
    std::uint64_t dun; ///< the DUN of the data unit
};

/// Key and DUN for the first data unit of logical block `lblk` of a file.
Expected expected_for_block(const FileParams& f, std::uint64_t lblk);

} // namespace icemu::models::fscrypt
