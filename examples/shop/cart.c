/* cart.c — the users' carts, kept in the "carts" key-value store (keel.yaml
 * stores:, granted by kv: [carts]). No routes of its own: the gateway calls
 * it after auth has vouched for the user, and it calls the catalog for
 * each product.
 *   add  (payload: "USER\n" + {"items":[{"id":"mug","qty":2},...]})
 *        adds the items to USER's stored cart
 *        -> 200 the priced cart | 400 bad input or unknown product
 *                               | 409 a product is out of stock
 *                               | 503 the store is unavailable
 *   show (payload: "USER") -> 200 USER's stored cart, priced now
 * Stored under "cart:USER" as lines "ID QTY\n"; a failed request stores
 * nothing. Replies follow shop.h's "NNN\n" rule. */
#define KEEL_IMPLEMENTATION
#include "shop.h"

#define MAX_LINES 20
#define MAX_QTY 99
#define STORE "carts"

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

/* Answers 503 for a store failure (the log gets the detail). */
static void store_failed(const char *what, int rc)
{
    keel_logf(KEEL_ERROR, "%s: %s", what, keel_kv_strerror(rc));
    shop_error(503, "cart storage unavailable, try again");
}

/* Reads USER's stored cart into lines[]: 1, or 0 after answering. */
static int load(const char *user)
{
    char key[80];
    uint8_t *v;
    size_t n;
    snprintf(key, sizeof key, "cart:%s", user);
    int rc = keel_kv_get(STORE, key, &v, &n);
    if (rc == KEEL_KV_ABSENT)
        return 1;
    if (rc < 0) {
        store_failed("reading the cart", rc);
        return 0;
    }
    for (char *line = (char *)v, *next; *line && nlines < MAX_LINES; line = next) {
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        struct line *l = &lines[nlines];
        memset(l, 0, sizeof *l);
        if (sscanf(line, "%32s %ld", l->id, &l->qty) == 2 && shop_name_ok(l->id))
            nlines++;
    }
    free(v);
    return 1;
}

/* Stores lines[] as USER's cart: 1, or 0 after answering. */
static int save(const char *user)
{
    char key[80], text[MAX_LINES * 48];
    size_t n = 0;
    snprintf(key, sizeof key, "cart:%s", user);
    for (int i = 0; i < nlines; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s %ld\n", lines[i].id,
                              lines[i].qty);
    int rc = keel_kv_set(STORE, key, text, n);
    if (rc < 0) {
        store_failed("storing the cart", rc);
        return 0;
    }
    return 1;
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
    int first = 1, r, seen_items = 0, items = 0;
    if (!jc_eat(&c, '{'))
        return 0;
    while ((r = jc_key(&c, &first, key, sizeof key)) == 1) {
        if (strcmp(key, "items") != 0 || seen_items++ || !jc_eat(&c, '['))
            return 0;
        do {
            if (!read_item(&c))
                return 0;
            items++;
        } while (jc_eat(&c, ','));
        if (!jc_eat(&c, ']'))
            return 0;
    }
    return r == 0 && jc_done(&c) && seen_items && items > 0;
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
    jb_printf(&out, "],\"total_cents\":%ld,\"persisted\":true}", total);
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
    if (!load(user))
        return;
    if (!read_cart(body, len - (size_t)(body - (const char *)payload))) {
        shop_error(400, "expected {\"items\":[{\"id\":\"mug\",\"qty\":1},...]} "
                        "with 1 to 20 products, qty 1 to 99");
        return;
    }
    for (int i = 0; i < nlines; i++)
        if (price(&lines[i]) != 0)
            return;
    if (save(user))
        answer(user);
}

static void show(const uint8_t *payload, size_t len)
{
    char user[64];
    if (!user_of(payload, len, user, sizeof user)) {
        keel_fail("cart.show expects USER");
        return;
    }
    if (!load(user))
        return;
    for (int i = 0; i < nlines; i++)
        if (price(&lines[i]) != 0)
            return;
    answer(user);
}

KEEL_INIT
{
    keel_register("add", add);
    keel_register("show", show);
}
