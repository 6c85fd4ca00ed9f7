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
//
// It also models icemu's key blobs (docs/device.md "Hardware-wrapped keys", "Blob format"): the
// long-term and ephemeral blobs its emulated key manager hands out are 64 bytes,
//   byte 0 0x49 ('I'), byte 1 version 1, byte 2 kind (1 long-term, 2 ephemeral), byte 3 0,
//   bytes 4-15 nonce, bytes 16-47 the master key encrypted, bytes 48-63 tag,
// sealed with AES-256-EAX (Bellare, Rogaway, Wagner, "The EAX Mode of Operation", FSE 2004;
// Crypto++ EAX<AES>) under the wrapping key of the blob's kind, nonce = bytes 4-15, associated
// data = bytes 0-3. A blob is accepted only when its header names the expected kind and its tag
// verifies. The models never share code with the device.
#pragma once

#include "icemu/models/fscrypt.hpp"

#include <optional>
#include <string_view>

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

// ---- icemu's key blobs ----------------------------------------------------------------------

inline constexpr std::size_t kBlobBytes = 64;
inline constexpr std::size_t kWrappingKeyBytes = 32; ///< AES-256
inline constexpr std::size_t kBlobHeaderBytes = 4;   ///< magic, version, kind, reserved
inline constexpr std::size_t kBlobNonceBytes = 12;
inline constexpr std::size_t kBlobTagBytes = 16;
inline constexpr std::uint8_t kBlobMagic = 0x49; ///< 'I'
inline constexpr std::uint8_t kBlobVersion = 1;

/// Byte 2 of a blob: which wrapping key seals it.
enum class BlobKind : std::uint8_t { long_term = 1, ephemeral = 2 };

/// AES-EAX (Crypto++ EAX<AES>) with a 16-byte tag: ciphertext || tag. `key` is 16, 24 or 32
/// bytes; the nonce and the header may have any length.
Bytes aes_eax_seal(ByteView key, ByteView nonce, ByteView header, ByteView plaintext);
/// The plaintext of `sealed` (ciphertext || 16-byte tag), or nullopt when the tag does not
/// verify (or `sealed` is shorter than a tag).
std::optional<Bytes> aes_eax_open(ByteView key, ByteView nonce, ByteView header, ByteView sealed);

/// The 64-byte blob of `master_key` (32 bytes) of kind `kind` under `wrapping_key` (32 bytes)
/// with `nonce` (12 bytes; the device draws it at random). Throws std::invalid_argument on a
/// wrong size.
Bytes wrap(ByteView wrapping_key, BlobKind kind, ByteView nonce, ByteView master_key);

/// Why unwrap refused a blob (the device answers every one of them with KMSTS BLOB).
enum class UnwrapError { length, magic, version, kind, reserved, tag };
std::string_view to_string(UnwrapError e);

struct Unwrapped {
    std::optional<Bytes> master_key;         ///< set when the blob was accepted
    UnwrapError error = UnwrapError::length; ///< why not, when it was not
    explicit operator bool() const { return master_key.has_value(); }
};

/// Opens a blob as the device does for an operation that expects `expected`: accepted only
/// when it is 64 bytes with magic 0x49, version 1, kind `expected`, reserved byte 0 and a tag
/// that verifies under `wrapping_key` (32 bytes). The checks run in that order; the first
/// failure is the error. Nothing of the key is returned for a refused blob.
Unwrapped unwrap_checked(ByteView wrapping_key, BlobKind expected, ByteView blob);
/// unwrap_checked's master key, or nullopt.
std::optional<Bytes> unwrap(ByteView wrapping_key, BlobKind expected, ByteView blob);

} // namespace icemu::models::hw_wrapped
