/*
 * Inline crypto engine: keys and the keyslot registers
 *
 * CCAP, x-CRYPTOCAP and the x-CRYPTOCFG array (UFSHCI 4.0 section 5.2.3
 * and 5.3; the CQHCI crypto registers have the same layout).  A slot is
 * armed by writing dword 16 with CFGE=1: its config is validated and a
 * cipher set up, shared by reference with the requests that use it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "crypto/hash.h"
#include "inline-crypto-internal.h"
#include "trace.h"

void ice_wipe(void *p, size_t len)
{
    volatile uint8_t *v = p; /* volatile: the stores must not be elided */

    while (len--) {
        *v++ = 0;
    }
}

/*
 * Keys
 */

InlineCryptoKey *ice_key_ref(InlineCryptoKey *key)
{
    key->refs++;
    return key;
}

void ice_key_unref(InlineCryptoKey *key)
{
    assert(key->refs > 0);
    if (--key->refs == 0) {
        /*
         * The key schedule lives in the backend's context: libgcrypt's
         * gcry_cipher_close() wipes it before freeing it (QEMU 10.0's
         * nettle, gnutls and built-in backends free it without wiping,
         * which is why the engine requires CONFIG_GCRYPT).
         */
        qcrypto_cipher_free(key->cipher);
        ice_wipe(key, sizeof(*key));
        g_free(key);
    }
}

static void ice_fingerprint(const uint8_t *key, size_t len,
                            char fp[INLINE_CRYPTO_FP_LEN + 1])
{
    uint8_t digest[32];
    uint8_t *res = digest;
    size_t reslen = sizeof(digest);

    if (qcrypto_hash_bytes(QCRYPTO_HASH_ALGO_SHA256, (const char *)key, len,
                           &res, &reslen, NULL) < 0) {
        pstrcpy(fp, INLINE_CRYPTO_FP_LEN + 1, "");
        return;
    }
    for (int i = 0; i < INLINE_CRYPTO_FP_LEN / 2; i++) {
        snprintf(fp + 2 * i, 3, "%02x", digest[i]);
    }
}

/*
 * Keyslots
 */

bool ice_slot_cfge(const InlineCryptoSlot *s)
{
    return FIELD_EX32(s->cfg[R_ICE_CFG16], ICE_CFG16, CFGE);
}

static void ice_slot_drop_key(InlineCryptoSlot *s)
{
    if (s->key) {
        ice_key_unref(s->key);
        s->key = NULL;
    }
}

/* Clear a slot completely (registers and key); returns whether CFGE was 1 */
static bool ice_slot_clear(InlineCryptoSlot *s)
{
    bool was_armed = ice_slot_cfge(s);

    ice_slot_drop_key(s);
    ice_wipe(s->cfg, sizeof(s->cfg));
    s->fp[0] = '\0';
    return was_armed;
}

/*
 * A device reset that finds no slot armed (the one at machine start, for
 * instance) is not an event worth logging: it is @quiet.
 */
void ice_wipe_all(InlineCrypto *ic, IceWipeReason why, bool quiet)
{
    unsigned armed = 0;

    for (unsigned i = 0; i < ic->p.nslots; i++) {
        armed += ice_slot_clear(&ic->slots[i]);
    }
    ic->last_slot = -1;
    if (quiet && !armed) {
        return;
    }
    ic->stats.wipes++;
    trace_inline_crypto_wipe(ic->ctrl, ice_wipe_reason_str(why), armed);
    ice_log_wipe(ic, why, armed);
}

/* Decode a one-hot DUSIZE into bytes; 0 if it is not one-hot */
uint32_t ice_dusize_bytes(uint8_t dusize)
{
    if (!dusize || (dusize & (dusize - 1))) {
        return 0;
    }
    return 512u << ctz32(dusize);
}

/*
 * Dword 16 written with CFGE=1: validate the config and arm the slot.  The
 * key as used (@keylen bytes, 0 if the capability has none we can build)
 * is left in @key for the log.
 */
static IceProgramError ice_slot_program(InlineCrypto *ic, unsigned idx,
                                        uint8_t *key, size_t *keylen)
{
    InlineCryptoSlot *s = &ic->slots[idx];
    uint32_t dw16 = s->cfg[R_ICE_CFG16];
    unsigned capidx = FIELD_EX32(dw16, ICE_CFG16, CAPIDX);
    uint8_t dusize = FIELD_EX32(dw16, ICE_CFG16, DUSIZE);
    uint32_t du_bytes = ice_dusize_bytes(dusize);
    const InlineCryptoCap *cap;
    QCryptoCipherAlgo alg;
    size_t half;
    g_autoptr(Error) err = NULL;
    InlineCryptoKey *k;

    *keylen = 0;
    if (capidx >= ic->ncaps) {
        return ICE_PROG_ERR_CAPIDX;
    }
    cap = &ic->caps[capidx];

    /* Key as used: XTS halves at byte 0 and byte 32 (K1 || K2) */
    if (cap->algid == ICE_ALG_AES_XTS &&
        (cap->ks == ICE_KS_128 || cap->ks == ICE_KS_256)) {
        uint8_t raw[INLINE_CRYPTO_KEY_MAX];

        for (int i = 0; i < INLINE_CRYPTO_KEY_DWORDS; i++) {
            stl_le_p(raw + 4 * i, s->cfg[i]);
        }
        half = cap->ks == ICE_KS_128 ? 16 : 32;
        memcpy(key, raw, half);
        memcpy(key + half, raw + INLINE_CRYPTO_KEY_MAX / 2, half);
        *keylen = 2 * half;
        ice_wipe(raw, sizeof(raw));
        ice_fingerprint(key, *keylen, s->fp);
    } else {
        s->fp[0] = '\0';
    }

    if (!du_bytes || !(dusize & cap->sdusb)) {
        return ICE_PROG_ERR_DUSIZE;
    }
    if (cap->algid != ICE_ALG_AES_XTS) {
        return ICE_PROG_ERR_ALG;
    }
    if (!*keylen) {
        return ICE_PROG_ERR_KEY_SIZE;
    }

    alg = cap->ks == ICE_KS_128 ? QCRYPTO_CIPHER_ALGO_AES_128
                                : QCRYPTO_CIPHER_ALGO_AES_256;
    k = g_new0(InlineCryptoKey, 1);
    k->cipher = qcrypto_cipher_new(alg, QCRYPTO_CIPHER_MODE_XTS, key, *keylen,
                                   &err);
    if (!k->cipher) {
        trace_inline_crypto_cipher_error(ic->ctrl, idx,
                                         error_get_pretty(err));
        g_free(k);
        return ICE_PROG_ERR_CIPHER;
    }
    k->refs = 1;
    k->du_size = du_bytes;
    pstrcpy(k->fp, sizeof(k->fp), s->fp);
    s->key = k;
    return ICE_PROG_OK;
}

/* Dword 16 written with CFGE=0: an evict or a disarm */
static void ice_slot_disarm(InlineCrypto *ic, unsigned idx, uint32_t val)
{
    InlineCryptoSlot *s = &ic->slots[idx];
    bool was_armed = ice_slot_cfge(s);
    bool evict = false;

    /*
     * Linux evicts with the same 19 writes it programs with, all zero: an
     * evict is CFGE=0 right after dword 17 of the same slot with a zero
     * key.  Its program sequence starts with a plain CFGE=0.
     */
    if (ic->last_slot == idx && ic->last_dword == R_ICE_CFG17) {
        evict = true;
        for (int i = 0; i < INLINE_CRYPTO_KEY_DWORDS; i++) {
            if (s->cfg[i]) {
                evict = false;
                break;
            }
        }
    }
    s->cfg[R_ICE_CFG16] = val;
    ice_slot_drop_key(s);
    if (evict) {
        s->fp[0] = '\0';
        ic->stats.evicts++;
        trace_inline_crypto_evict(ic->ctrl, idx, was_armed);
        ice_log_evict(ic, idx, was_armed);
    } else if (was_armed) {
        ic->stats.disarms++;
        trace_inline_crypto_disarm(ic->ctrl, idx);
        ice_log_disarm(ic, idx);
    }
}

/* Dword 16 written with CFGE=1: (re)program */
static void ice_slot_arm(InlineCrypto *ic, unsigned idx, uint32_t val)
{
    InlineCryptoSlot *s = &ic->slots[idx];
    uint8_t key[INLINE_CRYPTO_KEY_MAX];
    size_t keylen;
    IceProgramError err;
    unsigned capidx = FIELD_EX32(val, ICE_CFG16, CAPIDX);
    uint32_t du = ice_dusize_bytes(FIELD_EX32(val, ICE_CFG16, DUSIZE));

    ice_slot_drop_key(s);
    s->cfg[R_ICE_CFG16] = val;
    err = ice_slot_program(ic, idx, key, &keylen);
    if (err != ICE_PROG_OK) {
        ic->stats.program_errors++;
        trace_inline_crypto_program_error(ic->ctrl, idx, capidx, du,
                                          ice_program_error_str(err));
    } else {
        ic->stats.programs++;
        trace_inline_crypto_program(ic->ctrl, idx, capidx, du);
    }
    ice_log_program(ic, idx, capidx, du, err, key, keylen);
    ice_wipe(key, sizeof(key));
}

static uint32_t ice_cfg_read(InlineCrypto *ic, uint64_t offset)
{
    unsigned idx = offset / INLINE_CRYPTO_CFG_SIZE;
    unsigned dw = (offset % INLINE_CRYPTO_CFG_SIZE) / 4;

    if (idx >= ic->p.nslots) {
        return 0;
    }
    if (dw < INLINE_CRYPTO_KEY_DWORDS) {
        return 0;   /* CRYPTOKEY is write-only */
    }
    return ic->slots[idx].cfg[dw];
}

static void ice_cfg_write(InlineCrypto *ic, uint64_t offset, uint32_t val)
{
    unsigned idx = offset / INLINE_CRYPTO_CFG_SIZE;
    unsigned dw = (offset % INLINE_CRYPTO_CFG_SIZE) / 4;

    if (idx >= ic->p.nslots) {
        trace_inline_crypto_bad_offset(ic->ctrl, offset);
        return;
    }
    if (dw != R_ICE_CFG16) {
        ic->slots[idx].cfg[dw] = val;
    } else if (FIELD_EX32(val, ICE_CFG16, CFGE)) {
        ice_slot_arm(ic, idx, val);
    } else {
        ice_slot_disarm(ic, idx, val);
    }
    ic->last_slot = idx;
    ic->last_dword = dw;
}

/*
 * The x-CRYPTOCFG region (see inline_crypto_init_cfg_region()).  Traced
 * addresses are offsets in the controller's registers.
 */
static uint64_t ice_cfg_region_read(void *opaque, hwaddr addr, unsigned size)
{
    InlineCrypto *ic = opaque;
    uint32_t val = ice_cfg_read(ic, addr);

    trace_inline_crypto_cfg_read(ic->ctrl, ic->cfgptr * 0x100 + addr, val);
    return val;
}

static void ice_cfg_region_write(void *opaque, hwaddr addr, uint64_t data,
                                 unsigned size)
{
    InlineCrypto *ic = opaque;

    if (addr % INLINE_CRYPTO_CFG_SIZE < INLINE_CRYPTO_KEY_MAX) {
        trace_inline_crypto_key_write(ic->ctrl, ic->cfgptr * 0x100 + addr);
    } else {
        trace_inline_crypto_cfg_write(ic->ctrl, ic->cfgptr * 0x100 + addr,
                                      data);
    }
    ice_cfg_write(ic, addr, data);
}

static const MemoryRegionOps ice_cfg_region_ops = {
    .read = ice_cfg_region_read,
    .write = ice_cfg_region_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

void inline_crypto_init_cfg_region(InlineCrypto *ic, MemoryRegion *mr,
                                   Object *owner, const char *name)
{
    assert(ic->realized);
    memory_region_init_io(mr, owner, &ice_cfg_region_ops, ic, name,
                          inline_crypto_cfg_size(ic));
}

uint64_t inline_crypto_cfg_size(const InlineCrypto *ic)
{
    return (uint64_t)ic->p.nslots * INLINE_CRYPTO_CFG_SIZE;
}

uint32_t inline_crypto_ccap(const InlineCrypto *ic)
{
    uint32_t v = 0;

    v = FIELD_DP32(v, ICE_CCAP, CC, ic->ncaps);
    v = FIELD_DP32(v, ICE_CCAP, CFGC, ic->p.nslots - 1);
    v = FIELD_DP32(v, ICE_CCAP, CFGPTR, ic->cfgptr);
    return v;
}

uint32_t inline_crypto_cap_reg(const InlineCrypto *ic, unsigned idx)
{
    uint32_t v = 0;

    if (idx >= ic->ncaps) {
        return 0;
    }
    v = FIELD_DP32(v, ICE_CAP, ALGID, ic->caps[idx].algid);
    v = FIELD_DP32(v, ICE_CAP, SDUSB, ic->caps[idx].sdusb);
    v = FIELD_DP32(v, ICE_CAP, KS, ic->caps[idx].ks);
    return v;
}
