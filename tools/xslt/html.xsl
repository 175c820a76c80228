<?xml version="1.0" encoding="UTF-8"?>
<!--
  html.xsl - dipstorage documents as one standalone HTML page (no scripts,
  no external files).

  Input: a <flows> export, a <result> or a <tank> document. The page shows
  the document's metadata (tank, query, count, completeness, elapsed time,
  missing key ranges of a partial result), then a table of every flow at any
  depth with all attributes in the canonical order; `first` and `last` are
  shown as UTC date and time, the milliseconds in their tooltip. A number,
  string or boolean result is shown as its value; an <error> as its code,
  position and message.

    xsltproc tools/xslt/html.xsl result.xml > result.html
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>
  <xsl:strip-space elements="*"/>

  <xsl:variable name="root" select="/*"/>

  <xsl:template match="/">
    <html lang="en">
      <head>
        <title>
          <xsl:text>dipstorage </xsl:text>
          <xsl:value-of select="local-name($root)"/>
          <xsl:if test="$root/@query">
            <xsl:text>: </xsl:text>
            <xsl:value-of select="$root/@query"/>
          </xsl:if>
        </title>
        <style>
          body { font-family: sans-serif; margin: 1.5em; color: #222; }
          h1 { font-size: 1.3em; }
          table { border-collapse: collapse; font-size: 0.85em; }
          th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; white-space: nowrap; }
          th { background: #eee; position: sticky; top: 0; }
          tr:nth-child(even) td { background: #f8f8f8; }
          td.n { text-align: right; font-variant-numeric: tabular-nums; }
          td.t { font-variant-numeric: tabular-nums; }
          table.meta th { text-align: left; position: static; }
          .partial { color: #a40; font-weight: bold; }
          .value { font-size: 1.6em; font-family: monospace; }
          code { background: #f2f2f2; padding: 0 0.2em; }
        </style>
      </head>
      <body>
        <h1>
          <xsl:text>dipstorage </xsl:text>
          <xsl:value-of select="local-name($root)"/>
        </h1>
        <xsl:apply-templates select="$root" mode="page"/>
      </body>
    </html>
  </xsl:template>

  <!-- ===== metadata ===== -->

  <xsl:template match="*" mode="meta">
    <xsl:if test="@*">
      <table class="meta">
        <xsl:for-each select="@*">
          <tr>
            <th><xsl:value-of select="name()"/></th>
            <td>
              <xsl:choose>
                <xsl:when test="name() = 'query'"><code><xsl:value-of select="."/></code></xsl:when>
                <xsl:when test="name() = 'complete' and . = 'false'">
                  <span class="partial">false: some key ranges did not answer</span>
                </xsl:when>
                <xsl:otherwise><xsl:value-of select="."/></xsl:otherwise>
              </xsl:choose>
            </td>
          </tr>
        </xsl:for-each>
      </table>
    </xsl:if>
  </xsl:template>

  <xsl:template name="missing">
    <xsl:if test="missing">
      <h2 class="partial">Missing key ranges</h2>
      <table>
        <tr><th>tank</th><th>from</th><th>to</th><th>node</th><th>reason</th></tr>
        <xsl:for-each select="missing">
          <tr>
            <td><xsl:value-of select="@tank"/></td>
            <td><xsl:value-of select="@from"/></td>
            <td><xsl:value-of select="@to"/></td>
            <td><xsl:value-of select="@node"/></td>
            <td><xsl:value-of select="@reason"/></td>
          </tr>
        </xsl:for-each>
      </table>
    </xsl:if>
  </xsl:template>

  <!-- ===== pages by document kind ===== -->

  <xsl:template match="result" mode="page">
    <xsl:apply-templates select="." mode="meta"/>
    <xsl:call-template name="missing"/>
    <xsl:choose>
      <xsl:when test="number | string | boolean">
        <h2><xsl:value-of select="local-name((number | string | boolean)[1])"/></h2>
        <p class="value"><xsl:value-of select="(number | string | boolean)[1]"/></p>
      </xsl:when>
      <xsl:when test="attribute and not(.//flow)">
        <h2>Attributes</h2>
        <table>
          <tr><th>name</th><th>value</th></tr>
          <xsl:for-each select="attribute">
            <tr><td><xsl:value-of select="@name"/></td><td><xsl:value-of select="@value"/></td></tr>
          </xsl:for-each>
        </table>
      </xsl:when>
      <xsl:otherwise>
        <xsl:call-template name="flow-table"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="error" mode="page">
    <xsl:apply-templates select="." mode="meta"/>
    <p class="partial"><xsl:value-of select="."/></p>
  </xsl:template>

  <xsl:template match="*" mode="page">
    <xsl:apply-templates select="." mode="meta"/>
    <xsl:call-template name="flow-table"/>
  </xsl:template>

  <!-- ===== the flow table ===== -->

  <xsl:template name="flow-table">
    <xsl:variable name="flows" select=".//flow | self::flow"/>
    <h2>
      <xsl:value-of select="count($flows)"/>
      <xsl:text> flow record</xsl:text>
      <xsl:if test="count($flows) != 1">s</xsl:if>
    </h2>
    <xsl:if test="$flows">
      <table>
        <tr>
          <th>src</th>
          <th>dst</th>
          <th>sport</th>
          <th>dport</th>
          <th>proto</th>
          <th>packets</th>
          <th>bytes</th>
          <th>first</th>
          <th>last</th>
          <th>flags</th>
          <th>tos</th>
          <th>in</th>
          <th>out</th>
          <th>srcas</th>
          <th>dstas</th>
          <th>smask</th>
          <th>dmask</th>
          <th>nexthop</th>
          <th>exporter</th>
          <th>domain</th>
          <th>sampling</th>
          <th>id</th>
        </tr>
        <xsl:apply-templates select="$flows"/>
      </table>
    </xsl:if>
  </xsl:template>

  <xsl:template match="flow">
    <tr>
      <td><xsl:value-of select="@src"/></td>
      <td><xsl:value-of select="@dst"/></td>
      <td class="n"><xsl:value-of select="@sport"/></td>
      <td class="n"><xsl:value-of select="@dport"/></td>
      <td class="n"><xsl:value-of select="@proto"/></td>
      <td class="n"><xsl:value-of select="@packets"/></td>
      <td class="n"><xsl:value-of select="@bytes"/></td>
      <td class="t" title="{@first} ms">
        <xsl:call-template name="utc"><xsl:with-param name="ms" select="@first"/></xsl:call-template>
      </td>
      <td class="t" title="{@last} ms">
        <xsl:call-template name="utc"><xsl:with-param name="ms" select="@last"/></xsl:call-template>
      </td>
      <td class="n"><xsl:value-of select="@flags"/></td>
      <td class="n"><xsl:value-of select="@tos"/></td>
      <td class="n"><xsl:value-of select="@in"/></td>
      <td class="n"><xsl:value-of select="@out"/></td>
      <td class="n"><xsl:value-of select="@srcas"/></td>
      <td class="n"><xsl:value-of select="@dstas"/></td>
      <td class="n"><xsl:value-of select="@smask"/></td>
      <td class="n"><xsl:value-of select="@dmask"/></td>
      <td><xsl:value-of select="@nexthop"/></td>
      <td><xsl:value-of select="@exporter"/></td>
      <td class="n"><xsl:value-of select="@domain"/></td>
      <td class="n"><xsl:value-of select="@sampling"/></td>
      <td><xsl:value-of select="@id"/></td>
    </tr>
  </xsl:template>

  <!-- Milliseconds since the Unix epoch as "YYYY-MM-DD hh:mm:ss.mmm" UTC
       (proleptic Gregorian calendar; days to civil date after H. Hinnant's
       days_from_civil inverse). -->
  <xsl:template name="utc">
    <xsl:param name="ms"/>
    <xsl:variable name="days" select="floor($ms div 86400000)"/>
    <xsl:variable name="rem" select="$ms - $days * 86400000"/>
    <xsl:variable name="z" select="$days + 719468"/>
    <xsl:variable name="era" select="floor($z div 146097)"/>
    <xsl:variable name="doe" select="$z - $era * 146097"/>
    <xsl:variable name="yoe" select="floor(($doe - floor($doe div 1460) + floor($doe div 36524) - floor($doe div 146096)) div 365)"/>
    <xsl:variable name="doy" select="$doe - (365 * $yoe + floor($yoe div 4) - floor($yoe div 100))"/>
    <xsl:variable name="mp" select="floor((5 * $doy + 2) div 153)"/>
    <xsl:variable name="d" select="$doy - floor((153 * $mp + 2) div 5) + 1"/>
    <xsl:variable name="m" select="$mp + 3 - 12 * ($mp &gt;= 10)"/>
    <xsl:variable name="y" select="$yoe + $era * 400 + ($m &lt;= 2)"/>
    <xsl:value-of select="concat(format-number($y, '0000'), '-', format-number($m, '00'), '-', format-number($d, '00'), ' ',
                                 format-number(floor($rem div 3600000), '00'), ':',
                                 format-number(floor($rem mod 3600000 div 60000), '00'), ':',
                                 format-number(floor($rem mod 60000 div 1000), '00'), '.',
                                 format-number($rem mod 1000, '000'))"/>
  </xsl:template>

</xsl:stylesheet>
