/*
 * Inline crypto engine: declarations shared by its files, not by front
 * ends (they use include/hw/block/inline-crypto.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_BLOCK_INLINE_CRYPTO_INTERNAL_H
#define HW_BLOCK_INLINE_CRYPTO_INTERNAL_H

#include "hw/block/inline-crypto.h"

/*
 * Keys must not outlive their keyslot in freed host memory: only the
 * libgcrypt backend of QEMU's crypto/ wipes a cipher context when it is
 * freed (see ice_key_unref()).  Configure QEMU with --enable-gcrypt.
 */
#ifndef CONFIG_GCRYPT
#error "inline crypto needs --enable-gcrypt (only gcrypt wipes cipher contexts)"
#endif

/* Why every keyslot was cleared (event-log wipe "reason") */
typedef enum IceWipeReason {
    ICE_WIPE_DISABLE,
    ICE_WIPE_RESET,
    ICE_WIPE_UNREALIZE,
    ICE_WIPE__MAX,
} IceWipeReason;

/* Why a CFGE=1 write left a slot unusable (event-log program "error") */
typedef enum IceProgramError {
    ICE_PROG_OK = 0,
    ICE_PROG_ERR_CAPIDX,
    ICE_PROG_ERR_DUSIZE,
    ICE_PROG_ERR_ALG,
    ICE_PROG_ERR_KEY_SIZE,
    ICE_PROG_ERR_CIPHER,
    ICE_PROG_ERR__MAX,
} IceProgramError;

/* A memset the compiler may not drop for memory that dies right after */
void ice_wipe(void *p, size_t len);

/* Keys and keyslots (inline-crypto-keyslots.c) */
InlineCryptoKey *ice_key_ref(InlineCryptoKey *key);
void ice_key_unref(InlineCryptoKey *key);
bool ice_slot_cfge(const InlineCryptoSlot *s);
uint32_t ice_dusize_bytes(uint8_t dusize);
/* Clear every keyslot; a @quiet wipe that finds none armed is not logged */
void ice_wipe_all(InlineCrypto *ic, IceWipeReason why, bool quiet);

/* Requests (inline-crypto-req.c) */
InlineCryptoError ice_transform_sg(InlineCrypto *ic, InlineCryptoReq *r,
                                   QEMUSGList *sg, uint64_t offset,
                                   uint8_t *buf, uint64_t len, bool encrypt);

/* Staging memory (inline-crypto-staging.c) */
bool ice_staging_realize(InlineCrypto *ic, DeviceState *dev, Error **errp);
void ice_staging_unrealize(InlineCrypto *ic);
void ice_req_unstage(InlineCrypto *ic, InlineCryptoReq *r);

/* Event log (inline-crypto-log.c, icemu docs/event-log.md) */
void ice_log_realize(InlineCrypto *ic, InlineCryptoFrontend frontend);
void ice_log_enable(InlineCrypto *ic);
void ice_log_wipe(InlineCrypto *ic, IceWipeReason why, unsigned armed);
void ice_log_program(InlineCrypto *ic, unsigned slot, unsigned capidx,
                     uint32_t du, IceProgramError err, const uint8_t *key,
                     size_t keylen);
void ice_log_evict(InlineCrypto *ic, unsigned slot, bool was_armed);
void ice_log_disarm(InlineCrypto *ic, unsigned slot);
void ice_log_fault(InlineCrypto *ic, bool fatal);
void ice_log_io(InlineCrypto *ic, const InlineCryptoReq *r, uint64_t bytes,
                unsigned ocs, int status);
const char *ice_wipe_reason_str(IceWipeReason why);
const char *ice_program_error_str(IceProgramError err);

#endif /* HW_BLOCK_INLINE_CRYPTO_INTERNAL_H */
