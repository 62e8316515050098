/* gateway.c — the shop's front door: keel.yaml routes /api and every path
 * below it here, and the gateway routes by method and path to the other
 * components, in process:
 *   GET  /api                 the index: config "greeting" and the endpoints
 *   GET  /api/products        catalog.list
 *   GET  /api/products/ID     catalog.get
 *   POST /api/login           auth.login
 *   GET  /api/cart            auth.verify, then cart.show  (Bearer token)
 *   POST /api/cart            auth.verify, then cart.add   (Bearer token)
 * The callees answer "NNN\n" + JSON (shop.h); the gateway makes NNN the
 * HTTP status. Every answer is JSON, errors included: {"error":"..."}.
 * A callee that fails or traps fails the request: Keel answers 500 with
 * the request id and logs why. */
#define KEEL_IMPLEMENTATION
#include "shop.h"

static jbuf out;

static void send_json(int status, const char *body, size_t len)
{
    keel_set_status(status);
    keel_set_header("Content-Type", "application/json");
    keel_respond(body, len);
}

static void send_error(int status, const char *msg)
{
    jb_printf(&out, "{\"error\":");
    jb_str(&out, msg);
    jb_printf(&out, "}");
    send_json(status, out.s, out.n);
}

/* Calls component.op; on success *status and the JSON body (in *resp, to
 * free, from offset 4) come from the "NNN\n" reply. Returns 0, or -1 having
 * failed the request. */
static int call(const char *comp, const char *op, const void *payload, size_t len,
                int *status, uint8_t **resp, size_t *n)
{
    if (keel_call(comp, op, payload, len, resp, n) != 0) {
        keel_logf(KEEL_ERROR, "%s.%s: %s", comp, op, *resp ? (char *)*resp : "out of memory");
        free(*resp);
        keel_fail("a shop component failed");
        return -1;
    }
    *status = *n >= 4 && (*resp)[3] == '\n' ? atoi((char *)*resp) : 0;
    if (*status < 200 || *status > 599) {
        keel_logf(KEEL_ERROR, "%s.%s answered without a status line", comp, op);
        free(*resp);
        keel_fail("a shop component answered nonsense");
        return -1;
    }
    return 0;
}

/* Calls component.op and answers the HTTP request with its reply. */
static void relay(const char *comp, const char *op, const void *payload, size_t len)
{
    int status;
    uint8_t *resp;
    size_t n;
    if (call(comp, op, payload, len, &status, &resp, &n) == 0) {
        send_json(status, (char *)resp + 4, n - 4);
        free(resp);
    }
}

/* The user named by a valid "Authorization: Bearer TOKEN", checked by
 * auth.verify. Returns 1, or 0 having answered 401 (or failed). */
static int authenticate(char *user, size_t cap)
{
    char h[256];
    int n = keel_http_header("authorization", h, sizeof h);
    if (n < 0 || (size_t)n >= sizeof h || strncmp(h, "Bearer ", 7) != 0) {
        keel_set_header("WWW-Authenticate", "Bearer realm=\"shop\"");
        send_error(401, "missing bearer token: POST /api/login to get one");
        return 0;
    }
    int status;
    uint8_t *resp;
    size_t len;
    if (call("auth", "verify", h + 7, strlen(h + 7), &status, &resp, &len) != 0)
        return 0;
    jcur c = { (char *)resp + 4, (char *)resp + len };
    char key[16];
    int first = 1, r = -1;
    if (status == 200 && jc_eat(&c, '{'))
        while ((r = jc_key(&c, &first, key, sizeof key)) == 1)
            if (strcmp(key, "user") != 0 || !jc_string(&c, user, cap)) {
                r = -1;
                break;
            }
    if (status == 200 && r == 0 && jc_done(&c) && *user) {
        free(resp);
        return 1;
    }
    if (status == 200) {
        keel_fail("auth.verify answered nonsense");
    } else {
        keel_set_header("WWW-Authenticate", "Bearer realm=\"shop\", error=\"invalid_token\"");
        send_json(status, (char *)resp + 4, len - 4);
    }
    free(resp);
    return 0;
}

static void cart(const char *method, const uint8_t *body, size_t len)
{
    char user[64] = "";
    if (!authenticate(user, sizeof user))
        return;
    keel_set_header("Cache-Control", "no-store");
    if (strcmp(method, "GET") == 0) {
        relay("cart", "show", user, strlen(user));
        return;
    }
    /* cart.add gets "USER\n" + the body */
    size_t ul = strlen(user);
    char *payload = malloc(ul + 1 + len);
    if (!payload) {
        keel_fail("out of memory");
        return;
    }
    memcpy(payload, user, ul);
    payload[ul] = '\n';
    memcpy(payload + ul + 1, body, len);
    relay("cart", "add", payload, ul + 1 + len);
    free(payload);
}

static void index_page(void)
{
    char greeting[200];
    int n = keel_config("greeting", greeting, sizeof greeting);
    if (n < 0 || (size_t)n >= sizeof greeting)
        snprintf(greeting, sizeof greeting, "hello");
    jb_printf(&out, "{\"service\":\"keel shop\",\"greeting\":");
    jb_str(&out, greeting);
    jb_printf(&out, ",\"endpoints\":[\"GET /api/products\",\"GET /api/products/ID\","
                    "\"POST /api/login\",\"GET /api/cart\",\"POST /api/cart\"]}");
    send_json(200, out.s, out.n);
}

/* Answers 405 unless method is one of allow, a list like "GET, HEAD". */
static int method_ok(const char *method, const char *allow)
{
    size_t ml = strlen(method);
    for (const char *p = allow; *p; p += strspn(p, ", ")) {
        size_t tl = strcspn(p, ", ");
        if (tl == ml && memcmp(p, method, ml) == 0)
            return 1;
        p += tl;
    }
    keel_set_header("Allow", allow);
    send_error(405, "method not allowed");
    return 0;
}

static void handle(const uint8_t *body, size_t len)
{
    char method[16], path[1024];
    int m = keel_http_method(method, sizeof method);
    int n = keel_http_uri(path, sizeof path);
    if (m < 0 || n < 0) {
        keel_fail("gateway must be called over HTTP");
        return;
    }
    if ((size_t)n >= sizeof path || (size_t)m >= sizeof method) {
        send_error(414, "request target too long");
        return;
    }
    path[strcspn(path, "?")] = 0;   /* the query does not matter here */
    if (strcmp(method, "HEAD") == 0)   /* Keel sends HEAD to GET routes and drops the body */
        snprintf(method, sizeof method, "GET");
    const char *id = strncmp(path, "/api/products/", 14) == 0 ? path + 14 : NULL;

    if (strcmp(path, "/api") == 0 || strcmp(path, "/api/") == 0) {
        if (method_ok(method, "GET, HEAD"))
            index_page();
    } else if (strcmp(path, "/api/products") == 0) {
        if (method_ok(method, "GET, HEAD"))
            relay("catalog", "list", "", 0);
    } else if (id) {
        if (!method_ok(method, "GET, HEAD"))
            return;
        if (shop_name_ok(id))
            relay("catalog", "get", id, strlen(id));
        else
            send_error(404, "no such product");
    } else if (strcmp(path, "/api/login") == 0) {
        keel_set_header("Cache-Control", "no-store");
        if (method_ok(method, "POST"))
            relay("auth", "login", body, len);
    } else if (strcmp(path, "/api/cart") == 0) {
        if (method_ok(method, "GET, HEAD, POST"))
            cart(method, body, len);
    } else {
        send_error(404, "no such endpoint: GET /api lists them");
    }
}

KEEL_INIT { keel_register("handle", handle); }
