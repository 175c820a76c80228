/* xpath_catalogue.c - the catalogue of named example queries
 * (xpath/queries/catalogue.xml): loading it with libxml2, finding a query
 * by name and listing the names, for `dipstorage query NAME` and its help. */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xmlsafe.h"
#include "xpath/xpath.h"

static char *prop(xmlNodePtr n, const char *name)
{
    xmlChar *v = xmlGetProp(n, BAD_CAST name);
    char *s = v ? strdup((const char *)v) : NULL;
    xmlFree(v);
    return s;
}

void dip_xpath_catalogue_free(struct dip_xpath_catalogue *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->queries[i].name);
        free(c->queries[i].description);
        free(c->queries[i].tank);
        free(c->queries[i].expression);
    }
    free(c->queries);
    c->queries = NULL;
    c->n = 0;
}

static int add_query(struct dip_xpath_catalogue *c, xmlNodePtr n, const char *path, struct dip_errbuf *eb)
{
    struct dip_xpath_query_info qi = { prop(n, "name"), prop(n, "description"), prop(n, "tank"), NULL };
    xmlChar *text = xmlNodeGetContent(n);
    if (text) qi.expression = strdup((const char *)text);
    xmlFree(text);
    if (!qi.tank) qi.tank = strdup("any");
    int rc = DIP_OK;
    if (!qi.name || !qi.description || !qi.expression || !qi.tank) {
        rc = dip_err_set(eb, DIP_ECORRUPT, "%s:%ld: a query needs name, description and an expression", path,
                         xmlGetLineNo(n));
    } else {
        struct dip_xpath_query_info *nq = realloc(c->queries, (c->n + 1) * sizeof *nq);
        if (!nq) rc = dip_err_set(eb, DIP_ENOMEM, "out of memory");
        else {
            c->queries = nq;
            c->queries[c->n++] = qi;
            return DIP_OK;
        }
    }
    free(qi.name);
    free(qi.description);
    free(qi.tank);
    free(qi.expression);
    return rc;
}

int dip_xpath_catalogue_load(const char *dir, struct dip_xpath_catalogue *out, struct dip_errbuf *eb)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/catalogue.xml", dir);
    out->queries = NULL;
    out->n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return dip_err_sys(eb, errno, "%s", path);
    fclose(f);
    /* through xmlsafe: the process-wide entity loader refuses xmlReadFile */
    xmlDocPtr doc;
    if (dip_xml_parse_file(path, &doc, eb) != DIP_OK) return DIP_ECORRUPT;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    int rc = DIP_OK;
    if (!root || !xmlStrEqual(root->name, BAD_CAST "queries"))
        rc = dip_err_set(eb, DIP_ECORRUPT, "%s: the root element must be <queries>", path);
    for (xmlNodePtr n = root ? root->children : NULL; n && rc == DIP_OK; n = n->next)
        if (n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST "query")) rc = add_query(out, n, path, eb);
    xmlFreeDoc(doc);
    if (rc != DIP_OK) dip_xpath_catalogue_free(out);
    return rc;
}

const struct dip_xpath_query_info *dip_xpath_catalogue_find(const struct dip_xpath_catalogue *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->queries[i].name, name) == 0) return &c->queries[i];
    return NULL;
}

int dip_xpath_catalogue_list(const struct dip_xpath_catalogue *c, const char ***names)
{
    *names = malloc((c->n ? c->n : 1) * sizeof **names);
    if (!*names) return DIP_ENOMEM;
    for (size_t i = 0; i < c->n; i++) (*names)[i] = c->queries[i].name;
    return DIP_OK;
}
