/*
 * Inline crypto engine: the JSON-lines event log (icemu docs/event-log.md,
 * schema version 1)
 *
 * One line per event, written to the crypto-log chardev.  Key bytes only
 * appear with crypto-log-keys=on, and the line is wiped after the write.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "inline-crypto-internal.h"
#include "trace.h"

/*
 * The event log's vocabulary.  inline-crypto-events.def is a byte-identical
 * copy of icemu's schema definition (common/icemu/event-log.def, a test
 * compares them), from which icemu's parser takes the values it accepts.
 * A name the enums lack fails to compile; one the .def lacks is NULL and
 * trips the assertion in ice_name().
 */
typedef struct IceName {
    const char *s;
} IceName;

typedef enum {
    ICE_EV_REALIZE,
    ICE_EV_ENABLE,
    ICE_EV_WIPE,
    ICE_EV_PROGRAM,
    ICE_EV_EVICT,
    ICE_EV_DISARM,
    ICE_EV_IO,
    ICE_EV_FAULT,
    ICE_EV__MAX,
} IceEvent;

enum {
    ICE_IO_OP_READ,
    ICE_IO_OP_WRITE,
    ICE_IO_OP__MAX,
};

enum {
    ICE_FAULT_OCS,
    ICE_FAULT_FATAL,
    ICE_FAULT__MAX,
};

static const IceName ice_error_str[ICE_ERR__MAX] = {
    [ICE_OK] = { .s = "" },
#define ICEMU_IO_ERROR(ID, id, str) [ICE_ERR_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_event_str[ICE_EV__MAX] = {
#define ICEMU_EVENT(ID, id, str) [ICE_EV_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_frontend_str[ICE_FRONTEND__MAX] = {
#define ICEMU_FRONTEND(ID, id, str) [ICE_FRONTEND_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_wipe_reason_names[ICE_WIPE__MAX] = {
#define ICEMU_WIPE_REASON(ID, id, str) [ICE_WIPE_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_program_error_names[ICE_PROG_ERR__MAX] = {
    [ICE_PROG_OK] = { .s = "" },
#define ICEMU_PROGRAM_ERROR(ID, id, str) [ICE_PROG_ERR_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_io_op_str[ICE_IO_OP__MAX] = {
#define ICEMU_IO_OP(ID, id, str) [ICE_IO_OP_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_fault_kind_str[ICE_FAULT__MAX] = {
#define ICEMU_FAULT_KIND(ID, id, str) [ICE_FAULT_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const char *ice_name(const IceName *table, unsigned idx)
{
    assert(table[idx].s);
    return table[idx].s;
}

const char *inline_crypto_error_str(InlineCryptoError err)
{
    assert(err < ICE_ERR__MAX);
    return ice_name(ice_error_str, err);
}

const char *ice_wipe_reason_str(IceWipeReason why)
{
    assert(why < ICE_WIPE__MAX);
    return ice_name(ice_wipe_reason_names, why);
}

const char *ice_program_error_str(IceProgramError err)
{
    assert(err < ICE_PROG_ERR__MAX);
    return ice_name(ice_program_error_names, err);
}

static const char *ice_bool(bool b)
{
    return b ? "true" : "false";
}

/* NULL when no log chardev is connected: nothing is formatted then */
static GString *ice_log_begin(InlineCrypto *ic, IceEvent ev)
{
    GString *s;

    if (!qemu_chr_fe_backend_connected(&ic->p.log)) {
        return NULL;
    }
    s = g_string_new(NULL);
    g_string_append_printf(s, "{\"v\":1,\"seq\":%" PRIu64 ",\"t_ns\":%" PRId64
                           ",\"ctrl\":\"%s\",\"ev\":\"%s\"",
                           ic->seq++, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL),
                           ic->ctrl, ice_name(ice_event_str, ev));
    return s;
}

static void ice_log_end(InlineCrypto *ic, GString *s)
{
    g_string_append(s, "}\n");
    if (qemu_chr_fe_write_all(&ic->p.log, (const uint8_t *)s->str,
                              s->len) != s->len) {
        trace_inline_crypto_log_error(ic->ctrl);
    }
    /* the line may hold a raw key with crypto-log-keys=on */
    ice_wipe(s->str, s->len);
    g_string_free(s, true);
}

void ice_log_realize(InlineCrypto *ic, InlineCryptoFrontend frontend)
{
    GString *s = ice_log_begin(ic, ICE_EV_REALIZE);

    if (!s) {
        return;
    }
    g_string_append_printf(s, ",\"slots\":%u,\"cfgptr\":%u,\"caps\":[",
                           ic->p.nslots, ic->cfgptr);
    for (unsigned i = 0; i < ic->ncaps; i++) {
        g_string_append_printf(s, "%s{\"idx\":%u,\"algid\":%u,"
                               "\"sdusb\":%u,\"ks\":%u}", i ? "," : "",
                               i, ic->caps[i].algid, ic->caps[i].sdusb,
                               ic->caps[i].ks);
    }
    g_string_append_printf(s, "],\"wipe_on_disable\":%s,"
                           "\"log_keys\":%s,\"frontend\":\"%s\"",
                           ice_bool(ic->p.wipe_on_disable),
                           ice_bool(ic->p.log_keys),
                           ice_name(ice_frontend_str, frontend));
    ice_log_end(ic, s);
}

void ice_log_enable(InlineCrypto *ic)
{
    GString *s = ice_log_begin(ic, ICE_EV_ENABLE);

    if (!s) {
        return;
    }
    g_string_append_printf(s, ",\"on\":%s,\"cge\":%s", ice_bool(ic->on),
                           ice_bool(ic->cge));
    ice_log_end(ic, s);
}

void ice_log_wipe(InlineCrypto *ic, IceWipeReason why, unsigned armed)
{
    GString *s = ice_log_begin(ic, ICE_EV_WIPE);

    if (!s) {
        return;
    }
    g_string_append_printf(s, ",\"reason\":\"%s\",\"armed\":%u",
                           ice_wipe_reason_str(why), armed);
    ice_log_end(ic, s);
}

void ice_log_program(InlineCrypto *ic, unsigned slot, unsigned capidx,
                     uint32_t du, IceProgramError err, const uint8_t *key,
                     size_t keylen)
{
    GString *s = ice_log_begin(ic, ICE_EV_PROGRAM);

    if (!s) {
        return;
    }
    g_string_append_printf(s, ",\"slot\":%u,\"capidx\":%u,"
                           "\"dusize\":%u,\"key_fp\":\"%s\","
                           "\"ok\":%s", slot, capidx, du, ic->slots[slot].fp,
                           ice_bool(err == ICE_PROG_OK));
    if (err != ICE_PROG_OK) {
        g_string_append_printf(s, ",\"error\":\"%s\"",
                               ice_program_error_str(err));
    }
    if (ic->p.log_keys && keylen) {
        g_string_append(s, ",\"key\":\"");
        for (size_t i = 0; i < keylen; i++) {
            g_string_append_printf(s, "%02x", key[i]);
        }
        g_string_append_c(s, '"');
    }
    ice_log_end(ic, s);
}

void ice_log_evict(InlineCrypto *ic, unsigned slot, bool was_armed)
{
    GString *s = ice_log_begin(ic, ICE_EV_EVICT);

    if (!s) {
        return;
    }
    g_string_append_printf(s, ",\"slot\":%u,\"was_armed\":%s", slot,
                           ice_bool(was_armed));
    ice_log_end(ic, s);
}

void ice_log_disarm(InlineCrypto *ic, unsigned slot)
{
    GString *s = ice_log_begin(ic, ICE_EV_DISARM);

    if (!s) {
        return;
    }
    g_string_append_printf(s, ",\"slot\":%u", slot);
    ice_log_end(ic, s);
}

void ice_log_fault(InlineCrypto *ic, bool fatal)
{
    GString *s = ice_log_begin(ic, ICE_EV_FAULT);

    if (!s) {
        return;
    }
    g_string_append_printf(s, ",\"kind\":\"%s\",\"remaining\":%u",
                           ice_name(ice_fault_kind_str,
                                    fatal ? ICE_FAULT_FATAL : ICE_FAULT_OCS),
                           ic->fault_count);
    ice_log_end(ic, s);
}

void ice_log_io(InlineCrypto *ic, const InlineCryptoReq *r, uint64_t bytes,
                unsigned ocs, int status)
{
    const InlineCryptoKey *key = r->key;
    GString *s = ice_log_begin(ic, ICE_EV_IO);

    if (!s) {
        return;
    }
    /* a refused request reports the slot's key, if the slot has a valid one */
    if (!key && r->ce && r->slot >= 0 && r->slot < ic->p.nslots) {
        key = ic->slots[r->slot].key;
    }
    g_string_append_printf(s, ",\"slot\":%d,\"ce\":%s,\"lun\":%u,"
                           "\"op\":\"%s\",\"opcode\":%u,\"lba\":%" PRIu64
                           ",\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64
                           ",\"block_size\":%u,\"dun\":%" PRIu64
                           ",\"dusize\":%u,\"key_fp\":\"%s\",\"ocs\":%u,"
                           "\"status\":%d,\"queue\":\"%s\"",
                           r->ce ? r->slot : -1, ice_bool(r->ce), r->lun,
                           ice_name(ice_io_op_str, r->write ? ICE_IO_OP_WRITE
                                                            : ICE_IO_OP_READ),
                           r->opcode, r->lba, r->blocks, bytes, r->block_size,
                           r->ce ? r->dun : 0, key ? key->du_size : 0,
                           key ? key->fp : "", ocs, status, r->queue);
    if (r->err != ICE_OK) {
        g_string_append_printf(s, ",\"error\":\"%s\"",
                               inline_crypto_error_str(r->err));
    }
    ice_log_end(ic, s);
}
