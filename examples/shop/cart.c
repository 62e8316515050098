/* cart.c — prices a cart. No routes of its own: the gateway calls it after
 * auth has vouched for the user, and it calls the catalog for each product.
 *   add  (payload: "USER\n" + {"items":[{"id":"mug","qty":2},...]})
 *        -> 200 the priced cart | 400 bad input or unknown product
 *                               | 409 a product is out of stock
 *   show (payload: "USER") -> 200 an empty cart
 * NOT STORED: every request gets a fresh instance, and Keel has no
 * key-value store yet, so a cart lives exactly as long as the request that
 * carries it. "add" answers the cart made of the items it was sent and
 * "show" can only answer an empty one; both say "persisted": false.
 * Replies follow shop.h's "NNN\n" rule. */
#define KEEL_IMPLEMENTATION
#include "shop.h"

#define MAX_LINES 20
#define MAX_QTY 99

static struct line {
    char id[33], name[128];
    long qty, price_cents;
} lines[MAX_LINES];
static int nlines;
static jbuf out;

/* Fills in name and price of l from the catalog. Returns the status to
 * answer when that fails (400, 409), 0 on success, -1 when the call itself
 * failed (the cart then fails too). */
static int price(struct line *l)
{
    uint8_t *resp;
    size_t n;
    if (keel_call("catalog", "get", l->id, strlen(l->id), &resp, &n) != 0) {
        keel_logf(KEEL_ERROR, "catalog.get: %s", resp ? (char *)resp : "out of memory");
        keel_fail("catalog call failed");
        free(resp);
        return -1;
    }
    int status = n > 4 && resp[3] == '\n' ? atoi((char *)resp) : 0, rc = 0;
    jcur c = { (char *)resp + (n < 4 ? n : 4), (char *)resp + n };
    char key[16], cur[16];
    int first = 1, r = -1, in_stock = 0;
    if (status == 200 && jc_eat(&c, '{'))
        while ((r = jc_key(&c, &first, key, sizeof key)) == 1)
            if (!(strcmp(key, "id") == 0 && jc_string(&c, l->id, sizeof l->id)) &&
                !(strcmp(key, "name") == 0 && jc_string(&c, l->name, sizeof l->name)) &&
                !(strcmp(key, "price_cents") == 0 && jc_int(&c, &l->price_cents)) &&
                !(strcmp(key, "currency") == 0 && jc_string(&c, cur, sizeof cur)) &&
                !(strcmp(key, "in_stock") == 0 && jc_bool(&c, &in_stock))) {
                r = -1;
                break;
            }
    if (status == 404) {
        char msg[80];
        snprintf(msg, sizeof msg, "unknown product \"%s\"", l->id);
        shop_error(400, msg);
        rc = 400;
    } else if (status != 200 || r < 0 || !jc_done(&c)) {
        keel_fail("catalog.get answered something unexpected");
        rc = -1;
    } else if (!in_stock) {
        char msg[80];
        snprintf(msg, sizeof msg, "\"%s\" is out of stock", l->id);
        shop_error(409, msg);
        rc = 409;
    }
    free(resp);
    return rc;
}

/* Reads one {"id":"...","qty":N} into lines[], merging repeated ids. */
static int read_item(jcur *c)
{
    struct line l = { .qty = 0 };
    char key[16];
    int first = 1, r;
    if (!jc_eat(c, '{'))
        return 0;
    while ((r = jc_key(c, &first, key, sizeof key)) == 1)
        if (!(strcmp(key, "id") == 0 && jc_string(c, l.id, sizeof l.id)) &&
            !(strcmp(key, "qty") == 0 && jc_int(c, &l.qty)))
            return 0;
    if (r < 0 || !shop_name_ok(l.id) || l.qty < 1 || l.qty > MAX_QTY)
        return 0;
    for (int i = 0; i < nlines; i++)
        if (strcmp(lines[i].id, l.id) == 0) {
            lines[i].qty += l.qty;
            return lines[i].qty <= MAX_QTY;
        }
    if (nlines == MAX_LINES)
        return 0;
    lines[nlines++] = l;
    return 1;
}

/* {"items":[item, ...]} with at least one item. */
static int read_cart(const char *body, size_t len)
{
    jcur c = { body, body + len };
    char key[16];
    int first = 1, r;
    if (!jc_eat(&c, '{'))
        return 0;
    while ((r = jc_key(&c, &first, key, sizeof key)) == 1) {
        if (strcmp(key, "items") != 0 || nlines || !jc_eat(&c, '['))
            return 0;
        do {
            if (!read_item(&c))
                return 0;
        } while (jc_eat(&c, ','));
        if (!jc_eat(&c, ']'))
            return 0;
    }
    return r == 0 && jc_done(&c) && nlines > 0;
}

/* Splits "USER\nrest"; NULL when the gateway sent something else. */
static const char *user_of(const uint8_t *payload, size_t len, char *user, size_t cap)
{
    const char *nl = memchr(payload, '\n', len);
    size_t ul = nl ? (size_t)(nl - (const char *)payload) : len;
    if (ul >= cap)
        return NULL;
    memcpy(user, payload, ul);
    user[ul] = 0;
    if (!shop_name_ok(user))
        return NULL;
    return nl ? nl + 1 : (const char *)payload + len;
}

static void answer(const char *user)
{
    long total = 0;
    jb_printf(&out, "{\"user\":");
    jb_str(&out, user);
    jb_printf(&out, ",\"items\":[");
    for (int i = 0; i < nlines; i++) {
        struct line *l = &lines[i];
        jb_printf(&out, "%s{\"id\":", i ? "," : "");
        jb_str(&out, l->id);
        jb_printf(&out, ",\"name\":");
        jb_str(&out, l->name);
        jb_printf(&out, ",\"qty\":%ld,\"price_cents\":%ld,\"line_cents\":%ld}", l->qty,
                  l->price_cents, l->qty * l->price_cents);
        total += l->qty * l->price_cents;
    }
    jb_printf(&out, "],\"total_cents\":%ld,\"persisted\":false}", total);
    shop_reply(200, &out);
}

static void add(const uint8_t *payload, size_t len)
{
    char user[64];
    const char *body = user_of(payload, len, user, sizeof user);
    if (!body) {
        keel_fail("cart.add expects USER\\nBODY");
        return;
    }
    if (!read_cart(body, len - (size_t)(body - (const char *)payload))) {
        shop_error(400, "expected {\"items\":[{\"id\":\"mug\",\"qty\":1},...]} "
                        "with 1 to 20 products, qty 1 to 99");
        return;
    }
    for (int i = 0; i < nlines; i++)
        if (price(&lines[i]) != 0)
            return;
    answer(user);
}

static void show(const uint8_t *payload, size_t len)
{
    char user[64];
    if (!user_of(payload, len, user, sizeof user)) {
        keel_fail("cart.show expects USER");
        return;
    }
    answer(user);   /* nothing is stored yet: always empty */
}

KEEL_INIT
{
    keel_register("add", add);
    keel_register("show", show);
}
