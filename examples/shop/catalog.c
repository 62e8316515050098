/* catalog.c — the shop's product list, compiled in. No routes of its own:
 * the gateway and the cart call it.
 *   list (payload ignored) -> 200 {"currency":..., "products":[...]}
 *   get  (payload: an id)  -> 200 {"id":..., "name":..., ...} | 404
 * Config: currency (default "EUR"). Replies follow shop.h's "NNN\n" rule. */
#define KEEL_IMPLEMENTATION
#include "shop.h"

static const struct product {
    const char *id, *name;
    long price_cents;
    int stock;
} products[] = {
    { "kettle", "Stovetop kettle", 3900, 12 },
    { "teapot", "Cast-iron teapot", 5400, 4 },
    { "mug", "Stoneware mug", 1200, 40 },
    { "sencha", "Sencha green tea, 100 g", 850, 0 },
};
#define NPRODUCTS (sizeof products / sizeof *products)

static jbuf out;

static void currency(char *buf, size_t cap)
{
    int n = keel_config("currency", buf, cap);   /* -1 absent; >= cap too long */
    if (n <= 0 || (size_t)n >= cap)
        snprintf(buf, cap, "EUR");
}

static void product_json(const struct product *p, const char *cur)
{
    jb_printf(&out, "{\"id\":");
    jb_str(&out, p->id);
    jb_printf(&out, ",\"name\":");
    jb_str(&out, p->name);
    jb_printf(&out, ",\"price_cents\":%ld,\"currency\":", p->price_cents);
    jb_str(&out, cur);
    jb_printf(&out, ",\"in_stock\":%s}", p->stock > 0 ? "true" : "false");
}

static void list(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char cur[16];
    currency(cur, sizeof cur);
    jb_printf(&out, "{\"currency\":");
    jb_str(&out, cur);
    jb_printf(&out, ",\"products\":[");
    for (size_t i = 0; i < NPRODUCTS; i++) {
        if (i)
            jb_printf(&out, ",");
        product_json(&products[i], cur);
    }
    jb_printf(&out, "]}");
    shop_reply(200, &out);
}

static void get(const uint8_t *payload, size_t len)
{
    char cur[16];
    currency(cur, sizeof cur);
    for (size_t i = 0; i < NPRODUCTS; i++)
        if (strlen(products[i].id) == len && memcmp(products[i].id, payload, len) == 0) {
            product_json(&products[i], cur);
            shop_reply(200, &out);
            return;
        }
    shop_error(404, "no such product");
}

KEEL_INIT
{
    keel_register("list", list);
    keel_register("get", get);
}
