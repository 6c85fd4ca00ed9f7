// hw_wrapped: what inline-encryption hardware derives from a hardware-wrapped key, so a checker
// can predict the contents key the device must use and the software secret the kernel gets.
//
// Models the "standard hardware KDF" of Linux's hardware-wrapped key support
// (Documentation/block/inline-encryption.rst, "Hardware-wrapped keys"; replicated in fstests'
// src/fscrypt-crypt-util.c, --enable-hw-kdf):
//   - NIST SP 800-108r1 §4.1, KDF in counter mode, PRF = AES-256-CMAC (SP 800-38B) keyed by
//     the 32-byte master key; for 16-byte output block i = 1, 2, ...:
//       K(i) = CMAC(master, be32(i) || label || 0x00 || context || be32(L)), L in bits;
//   - label = 00 00 40 00 00 00 00 00 00 00 20 (11 bytes);
//   - the inline encryption key (64 bytes, AES-256-XTS, file contents only): context =
//     "inline encryption key" || 00*6 || 02 43 00 82 50 00 00 00 00 (36 bytes);
//   - the software secret (32 bytes, returned by blk_crypto_derive_sw_secret()): context =
//     "raw secret" || 00*9 || 02 17 00 80 50 00 00 00 00 (28 bytes).
// fscrypt (fs/crypto/keyring.c, add_master_key) then uses the software secret as the HKDF key
// for everything but contents, and derives the key identifier with HKDF context 8
// (HKDF_CONTEXT_KEY_IDENTIFIER_FOR_HW_WRAPPED_KEY) instead of 1; the contents key of every
// file under an IV_INO_LBLK_64/32 policy is the inline encryption key itself
// (fs/crypto/keysetup.c, setup_per_mode_enc_key). Wrapped keys need an IV_INO_LBLK policy.
#pragma once

#include "icemu/models/fscrypt.hpp"

namespace icemu::models::hw_wrapped {

inline constexpr std::size_t kMasterKeyBytes = 32;      ///< AES-256-sized raw master key
inline constexpr std::size_t kInlineKeyBytes = 64;      ///< AES-256-XTS contents key
inline constexpr std::size_t kSwSecretBytes = 32;       ///< BLK_CRYPTO_SW_SECRET_SIZE
inline constexpr std::size_t kMaxWrappedKeyBytes = 128; ///< BLK_CRYPTO_MAX_HW_WRAPPED_KEY_SIZE

/// AES-256-CMAC (NIST SP 800-38B) of `message`; `key` must be 32 bytes.
Bytes aes256_cmac(ByteView key, ByteView message);

/// NIST SP 800-108r1 KDF in counter mode with AES-256-CMAC: `length` bytes (a multiple of 16,
/// at most 2^32 - 1 blocks) from `key` (32 bytes), `label` and `context`.
Bytes kdf_counter_cmac(ByteView key, ByteView label, ByteView context, std::size_t length);

/// The 64-byte inline encryption key the hardware derives from a 32-byte master key.
Bytes inline_encryption_key(ByteView master_key);
/// The 32-byte software secret the hardware returns for a 32-byte master key.
Bytes sw_secret(ByteView master_key);
/// FS_IOC_ADD_ENCRYPTION_KEY's identifier for a hardware-wrapped key with this master key.
Bytes key_identifier(ByteView master_key);
/// The IV_INO_LBLK_32 inode hash key (fscrypt HKDF context 7 over the software secret).
fscrypt::SipKey inode_hash_key(ByteView master_key);

} // namespace icemu::models::hw_wrapped
