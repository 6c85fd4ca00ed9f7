/*
 * Inline crypto engine for storage host controllers (UFSHCI / CQHCI style):
 * life cycle, capabilities, controller enable and QOM properties
 *
 * See include/hw/block/inline-crypto.h for the model, its invariants and
 * the engine's files; icemu's docs/device.md and docs/event-log.md for the
 * guest-visible contract.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qemu/cutils.h"
#include "hw/qdev-core.h"
#include "inline-crypto-internal.h"
#include "trace.h"

static const char *const ice_alg_names[] = {
    [ICE_ALG_AES_XTS] = "aes-xts",
    [ICE_ALG_BITLOCKER_AES_CBC] = "bitlocker-aes-cbc",
    [ICE_ALG_AES_ECB] = "aes-ecb",
    [ICE_ALG_ESSIV_AES_CBC] = "essiv-aes-cbc",
};

/*
 * Controller state
 */

void inline_crypto_set_enable(InlineCrypto *ic, bool on, bool cge)
{
    bool was_on = ic->on;

    if (on == ic->on && cge == ic->cge) {
        return;
    }
    ic->on = on;
    ic->cge = cge;
    trace_inline_crypto_enable(ic->ctrl, on, cge);
    ice_log_enable(ic);
    if (was_on && !on && ic->p.wipe_on_disable) {
        ice_wipe_all(ic, ICE_WIPE_DISABLE, false);
    }
}

void inline_crypto_reset(InlineCrypto *ic)
{
    if (!ic->realized) {
        return;
    }
    ice_wipe_all(ic, ICE_WIPE_RESET, true);
}

/*
 * Capabilities: "aes-xts-256:0x0f/aes-xts-128:0x08/..."
 */

static bool ice_parse_cap(const char *str, InlineCryptoCap *cap, Error **errp)
{
    const char *colon = strchr(str, ':');
    const char *dash;
    g_autofree char *name = NULL;
    unsigned bits, sdusb;
    const char *end;
    int i;

    if (!colon) {
        error_setg(errp, "crypto-caps entry '%s' is not ALG-KEYBITS:SDUSB",
                   str);
        return false;
    }
    name = g_strndup(str, colon - str);
    dash = strrchr(name, '-');
    if (!dash || qemu_strtoui(dash + 1, &end, 10, &bits) || *end) {
        error_setg(errp, "crypto-caps entry '%s': no key size", str);
        return false;
    }
    name[dash - name] = '\0';
    for (i = 0; i < ARRAY_SIZE(ice_alg_names); i++) {
        if (!strcmp(name, ice_alg_names[i])) {
            break;
        }
    }
    if (i == ARRAY_SIZE(ice_alg_names)) {
        error_setg(errp, "crypto-caps entry '%s': unknown algorithm '%s'",
                   str, name);
        return false;
    }
    cap->algid = i;
    switch (bits) {
    case 128:
        cap->ks = ICE_KS_128;
        break;
    case 192:
        cap->ks = ICE_KS_192;
        break;
    case 256:
        cap->ks = ICE_KS_256;
        break;
    case 512:
        cap->ks = ICE_KS_512;
        break;
    default:
        error_setg(errp, "crypto-caps entry '%s': key size must be 128, 192, "
                   "256 or 512", str);
        return false;
    }
    if (qemu_strtoui(colon + 1, &end, 0, &sdusb) || *end || sdusb > 0xff) {
        error_setg(errp, "crypto-caps entry '%s': SDUSB must be 0..0xff", str);
        return false;
    }
    cap->sdusb = sdusb;
    return true;
}

static bool ice_parse_caps(InlineCrypto *ic, const char *str,
                           unsigned max_caps, Error **errp)
{
    g_auto(GStrv) items = g_strsplit(str, "/", -1);

    ic->ncaps = 0;
    for (int i = 0; items[i]; i++) {
        if (ic->ncaps >= max_caps) {
            error_setg(errp, "crypto-caps: at most %u entries", max_caps);
            return false;
        }
        if (!ice_parse_cap(items[i], &ic->caps[ic->ncaps], errp)) {
            return false;
        }
        ic->ncaps++;
    }
    if (!ic->ncaps) {
        error_setg(errp, "crypto-caps: at least one entry is needed");
        return false;
    }
    return true;
}

bool inline_crypto_realize(InlineCrypto *ic, DeviceState *dev,
                           InlineCryptoFrontend frontend, uint8_t cfgptr,
                           unsigned max_caps, Error **errp)
{
    if (!ic->p.enabled) {
        return true;
    }
    if (ic->p.nslots < 1 || ic->p.nslots > INLINE_CRYPTO_MAX_SLOTS) {
        error_setg(errp, "crypto-keyslots must be between 1 and %d",
                   INLINE_CRYPTO_MAX_SLOTS);
        return false;
    }
    if (!ice_parse_caps(ic, ic->p.caps ? ic->p.caps
                                       : INLINE_CRYPTO_DEFAULT_CAPS,
                        MIN(max_caps, INLINE_CRYPTO_MAX_CAPS), errp)) {
        return false;
    }
    ic->cfgptr = cfgptr;
    ic->ctrl = dev->id ? g_strdup(dev->id)
                       : object_get_canonical_path(OBJECT(dev));
    ic->slots = g_new0(InlineCryptoSlot, ic->p.nslots);
    ic->last_slot = -1;
    ic->last_dword = -1;
    ic->realized = true;
    ice_log_realize(ic, frontend);
    if (!ice_staging_realize(ic, dev, errp)) {
        inline_crypto_unrealize(ic);
        return false;
    }
    return true;
}

void inline_crypto_unrealize(InlineCrypto *ic)
{
    if (!ic->realized) {
        return;
    }
    ice_wipe_all(ic, ICE_WIPE_UNREALIZE, false);
    ice_staging_unrealize(ic);
    g_free(ic->slots);
    ic->slots = NULL;
    g_free(ic->ctrl);
    ic->ctrl = NULL;
    ic->realized = false;
}

/*
 * QOM run-time properties
 */

static void ice_get_fault_count(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;

    visit_type_uint32(v, name, &ic->fault_count, errp);
}

static void ice_set_fault_count(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    ic->fault_count = value;
    trace_inline_crypto_fault_armed(ic->ctrl ? ic->ctrl : "-", value,
                                    ic->fault_fatal);
}

static void ice_get_fault_fatal(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;

    visit_type_bool(v, name, &ic->fault_fatal, errp);
}

static void ice_set_fault_fatal(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;
    bool value;

    if (!visit_type_bool(v, name, &value, errp)) {
        return;
    }
    ic->fault_fatal = value;
}

static QDict *ice_state(InlineCrypto *ic)
{
    QDict *d = qdict_new();
    QDict *c = qdict_new();
    QList *slots = qlist_new();

    qdict_put_bool(d, "enabled", ic->realized);
    qdict_put_bool(d, "on", ic->on);
    qdict_put_bool(d, "cge", ic->cge);
    for (unsigned i = 0; ic->realized && i < ic->p.nslots; i++) {
        InlineCryptoSlot *s = &ic->slots[i];
        uint32_t dw16 = s->cfg[R_ICE_CFG16];
        QDict *e = qdict_new();

        qdict_put_int(e, "slot", i);
        qdict_put_bool(e, "armed", ice_slot_cfge(s));
        qdict_put_bool(e, "valid", s->key != NULL);
        qdict_put_int(e, "capidx", FIELD_EX32(dw16, ICE_CFG16, CAPIDX));
        qdict_put_int(e, "dusize",
                      ice_dusize_bytes(FIELD_EX32(dw16, ICE_CFG16, DUSIZE)));
        qdict_put_str(e, "key_fp", s->key ? s->key->fp : "");
        qlist_append(slots, e);
    }
    qdict_put(d, "slots", slots);
    qdict_put_int(c, "programs", ic->stats.programs);
    qdict_put_int(c, "program_errors", ic->stats.program_errors);
    qdict_put_int(c, "evicts", ic->stats.evicts);
    qdict_put_int(c, "disarms", ic->stats.disarms);
    qdict_put_int(c, "wipes", ic->stats.wipes);
    qdict_put_int(c, "ce_reads", ic->stats.ce_reads);
    qdict_put_int(c, "ce_writes", ic->stats.ce_writes);
    qdict_put_int(c, "errors", ic->stats.errors);
    qdict_put_int(c, "faults", ic->stats.faults);
    qdict_put_int(c, "bytes", ic->stats.bytes);
    qdict_put_int(c, "staged", ic->stats.staged);
    qdict_put_int(c, "chunked", ic->stats.chunked);
    qdict_put(d, "counters", c);
    qdict_put_int(d, "fault_count", ic->fault_count);
    qdict_put_bool(d, "fault_fatal", ic->fault_fatal);
    return d;
}

static void ice_get_state(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    QObject *state = QOBJECT(ice_state(opaque));

    visit_type_any(v, name, &state, errp);
    qobject_unref(state);
}

void inline_crypto_add_properties(InlineCrypto *ic, Object *obj)
{
    object_property_add(obj, "crypto-fault-count", "uint32",
                        ice_get_fault_count, ice_set_fault_count, NULL, ic);
    object_property_set_description(obj, "crypto-fault-count",
        "the next N crypto data requests fail with a general crypto error");
    object_property_add(obj, "crypto-fault-fatal", "bool",
                        ice_get_fault_fatal, ice_set_fault_fatal, NULL, ic);
    object_property_set_description(obj, "crypto-fault-fatal",
        "injected crypto faults also raise the crypto engine fatal error");
    object_property_add(obj, "crypto-state", "any", ice_get_state, NULL, NULL,
                        ic);
    object_property_set_description(obj, "crypto-state",
        "keyslot table and counters of the inline crypto engine (read-only)");
}
