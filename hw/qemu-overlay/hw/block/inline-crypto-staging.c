/*
 * Inline crypto engine: staging memory
 *
 * Device-private RAM in an address space of its own (InlineCryptoStaging),
 * handed out to CE requests in granules of the largest data unit, so that
 * no data unit straddles two.  It only ever holds ciphertext.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/units.h"
#include "qemu/bitmap.h"
#include "hw/qdev-core.h"
#include "inline-crypto-internal.h"

#define ICE_STAGING_MAX (1 * GiB)

static void ice_get_staging_size(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;

    visit_type_size(v, name, &ic->staging.size, errp);
}

static void ice_set_staging_size(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;
    uint64_t value;

    if (DEVICE(obj)->realized) {
        error_setg(errp, "%s cannot be changed after realize", name);
        return;
    }
    if (!visit_type_size(v, name, &value, errp)) {
        return;
    }
    if (value % INLINE_CRYPTO_STAGING_GRANULE ||
        value > (uint64_t)ICE_STAGING_MAX) {
        error_setg(errp, "%s must be a multiple of %u KiB, at most %u MiB",
                   name, (unsigned)(INLINE_CRYPTO_STAGING_GRANULE / KiB),
                   (unsigned)(ICE_STAGING_MAX / MiB));
        return;
    }
    ic->staging.size = value;
}

void inline_crypto_add_staging_property(InlineCrypto *ic, Object *obj)
{
    ic->staging.size = INLINE_CRYPTO_STAGING_DEFAULT;
    object_property_add(obj, "x-crypto-staging-size", "size",
                        ice_get_staging_size, ice_set_staging_size, NULL, ic);
    object_property_set_description(obj, "x-crypto-staging-size",
        "bytes of device memory for whole-request crypto buffers "
        "(0: every CE request takes the chunked path)");
}

bool ice_staging_realize(InlineCrypto *ic, DeviceState *dev, Error **errp)
{
    InlineCryptoStaging *st = &ic->staging;

    if (!st->size) {
        return true;
    }
    /* Private RAM: never mapped for the guest, not migrated */
    if (!memory_region_init_ram_flags_nomigrate(&st->mr, OBJECT(dev),
                                                "inline-crypto-staging",
                                                st->size, 0, errp)) {
        return false;
    }
    address_space_init(&st->as, &st->mr, "inline-crypto-staging");
    st->host = memory_region_get_ram_ptr(&st->mr);
    st->granules = st->size / INLINE_CRYPTO_STAGING_GRANULE;
    st->used = bitmap_new(st->granules);
    st->free = st->granules;
    st->ready = true;
    return true;
}

void ice_staging_unrealize(InlineCrypto *ic)
{
    InlineCryptoStaging *st = &ic->staging;

    if (!st->ready) {
        return;
    }
    address_space_destroy(&st->as);
    object_unparent(OBJECT(&st->mr));
    g_free(st->used);
    st->used = NULL;
    st->host = NULL;
    st->ready = false;
}

QEMUSGList *inline_crypto_stage(InlineCrypto *ic, InlineCryptoReq *r,
                                DeviceState *dev)
{
    InlineCryptoStaging *st = &ic->staging;
    const uint64_t g = INLINE_CRYPTO_STAGING_GRANULE;
    uint64_t need = DIV_ROUND_UP(r->len, g);
    uint64_t left = r->len;
    uint64_t bit = 0;

    assert(r->active && !r->staged);
    if (!r->len) {
        return NULL;
    }
    if (!st->ready || need > st->free) {
        ic->stats.chunked++;
        return NULL;
    }
    /* Any free granules will do: runs of them become the list's entries */
    qemu_sglist_init(&r->staging, dev, MIN(need, 16), &st->as);
    while (left) {
        uint64_t run = 1;
        uint64_t bytes;

        bit = find_next_zero_bit(st->used, st->granules, bit);
        assert(bit < st->granules);
        while (run * g < left && bit + run < st->granules &&
               !test_bit(bit + run, st->used)) {
            run++;
        }
        bytes = MIN(run * g, left);
        bitmap_set(st->used, bit, run);
        qemu_sglist_add(&r->staging, bit * g, bytes);
        left -= bytes;
        bit += run;
    }
    st->free -= need;
    r->staged = true;
    ic->stats.staged++;
    return &r->staging;
}

QEMUSGList *inline_crypto_staged_sg(InlineCryptoReq *r)
{
    return r->staged ? &r->staging : NULL;
}

void ice_req_unstage(InlineCrypto *ic, InlineCryptoReq *r)
{
    InlineCryptoStaging *st = &ic->staging;
    const uint64_t g = INLINE_CRYPTO_STAGING_GRANULE;

    if (!r->staged) {
        return;
    }
    for (int i = 0; i < r->staging.nsg; i++) {
        ScatterGatherEntry *e = &r->staging.sg[i];
        uint64_t n = DIV_ROUND_UP(e->len, g);

        bitmap_clear(st->used, e->base / g, n);
        st->free += n;
    }
    qemu_sglist_destroy(&r->staging);
    r->staged = false;
}

InlineCryptoError inline_crypto_staged_transform(InlineCrypto *ic,
                                                 InlineCryptoReq *r,
                                                 QEMUSGList *sg,
                                                 uint64_t len)
{
    InlineCryptoStaging *st = &ic->staging;
    uint64_t done = 0;

    assert(r->staged);
    len = QEMU_ALIGN_DOWN(len, r->du_size);
    for (int i = 0; i < r->staging.nsg && done < len; i++) {
        ScatterGatherEntry *e = &r->staging.sg[i];
        uint64_t n = MIN(e->len, len - done);

        /* entries are whole granules, so data units never straddle two */
        r->err = ice_transform_sg(ic, r, sg, done, st->host + e->base, n,
                                  r->write);
        if (r->err != ICE_OK) {
            return r->err;
        }
        done += n;
    }
    if (done != len) {
        r->err = ICE_ERR_DMA;
    }
    return r->err;
}
