/* transform.c - applying an export stylesheet (XSLT through libxslt) for
 * `dipstorage store export` and `dipstorage export`. */
#include <libxslt/transform.h>
#include <libxslt/xsltutils.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/xmlsafe.h"

int dip_cli_transform(const char *stylesheet, const char *xml_path, FILE *out)
{
    char path[4096];
    struct dip_errbuf eb = { { 0 } };
    if (access(stylesheet, R_OK) == 0) snprintf(path, sizeof path, "%s", stylesheet);
    else {
        char rel[256];
        snprintf(rel, sizeof rel, "tools/xslt/%s%s", stylesheet, strstr(stylesheet, ".xsl") ? "" : ".xsl");
        if (dip_path_find(rel, path, sizeof path, &eb)) {
            dip_error("stylesheet %s: %s", stylesheet, eb.msg);
            return DIP_EXIT_FAIL;
        }
    }
    /* Both documents are read through xmlsafe (no network, no external
     * entities); stylesheets therefore cannot xsl:include or xsl:import. */
    xmlDocPtr xsl_doc;
    if (dip_xml_parse_file(path, &xsl_doc, &eb)) {
        dip_error("%s", eb.msg);
        return DIP_EXIT_FAIL;
    }
    xsltStylesheetPtr xsl = xsltParseStylesheetDoc(xsl_doc); /* takes xsl_doc on success */
    if (!xsl) {
        xmlFreeDoc(xsl_doc);
        dip_error("%s: not a valid XSLT stylesheet", path);
        return DIP_EXIT_FAIL;
    }
    xmlDocPtr doc;
    int rc = dip_xml_parse_file(xml_path, &doc, &eb);
    if (rc) {
        dip_error("%s", eb.msg);
        xsltFreeStylesheet(xsl);
        return DIP_EXIT_FAIL;
    }
    xmlDocPtr res = xsltApplyStylesheet(xsl, doc, NULL);
    int status = DIP_EXIT_OK;
    if (!res || xsltSaveResultToFile(out, res, xsl) < 0) {
        dip_error("the stylesheet %s failed", path);
        status = DIP_EXIT_FAIL;
    }
    xmlFreeDoc(res);
    xmlFreeDoc(doc);
    xsltFreeStylesheet(xsl);
    return status;
}

