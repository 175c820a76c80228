<?xml version="1.0" encoding="UTF-8"?>
<!--
  csv.xsl - dipstorage documents as CSV (RFC 4180 fields, LF line ends).

  Input: a <flows> export, a <result>, or a <tank> document (all flows at any
  depth, in document order). Output: a header line naming every flow
  attribute in the canonical order, then one line per flow; optional
  attributes a record lacks are empty cells. A <result> holding a number,
  string or boolean gives one line with the value; one holding only selected
  attributes gives name,value lines; an <error> gives code,message.

    xsltproc tools/xslt/csv.xsl flows.xml > flows.csv
    dipstorage export -t csv.xsl '//flow[@dport=22]'
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:strip-space elements="*"/>

  <xsl:template match="/">
    <xsl:variable name="scalar" select="result/number | result/string | result/boolean"/>
    <xsl:choose>
      <xsl:when test="$scalar">
        <xsl:call-template name="field">
          <xsl:with-param name="value" select="string($scalar[1])"/>
        </xsl:call-template>
        <xsl:text>&#10;</xsl:text>
      </xsl:when>
      <xsl:when test="result[attribute and not(.//flow)]">
        <xsl:text>name,value&#10;</xsl:text>
        <xsl:for-each select="result/attribute">
          <xsl:value-of select="@name"/>
          <xsl:text>,</xsl:text>
          <xsl:call-template name="field">
            <xsl:with-param name="value" select="string(@value)"/>
          </xsl:call-template>
          <xsl:text>&#10;</xsl:text>
        </xsl:for-each>
      </xsl:when>
      <xsl:when test="error">
        <xsl:text>code,message&#10;</xsl:text>
        <xsl:value-of select="error/@code"/>
        <xsl:text>,</xsl:text>
        <xsl:call-template name="field">
          <xsl:with-param name="value" select="string(error)"/>
        </xsl:call-template>
        <xsl:text>&#10;</xsl:text>
      </xsl:when>
      <xsl:otherwise>
        <xsl:text>src,dst,sport,dport,proto,packets,bytes,first,last,flags,tos,in,out,srcas,dstas,smask,dmask,nexthop,exporter,domain,sampling,id&#10;</xsl:text>
        <xsl:apply-templates select="//flow"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- Flow attributes are numbers, addresses and hex IDs: never quoted. -->
  <xsl:template match="flow">
    <xsl:value-of select="@src"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@dst"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@sport"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@dport"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@proto"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@packets"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@bytes"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@first"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@last"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@flags"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@tos"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@in"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@out"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@srcas"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@dstas"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@smask"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@dmask"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@nexthop"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@exporter"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@domain"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@sampling"/><xsl:text>,</xsl:text>
    <xsl:value-of select="@id"/><xsl:text>&#10;</xsl:text>
  </xsl:template>

  <!-- A free-text field: quoted when it holds a comma, a quote or a line
       break, with quotes doubled (RFC 4180 section 2). -->
  <xsl:template name="field">
    <xsl:param name="value"/>
    <xsl:choose>
      <xsl:when test="contains($value, ',') or contains($value, '&quot;') or contains($value, '&#10;') or contains($value, '&#13;')">
        <xsl:text>"</xsl:text>
        <xsl:call-template name="double-quotes">
          <xsl:with-param name="s" select="$value"/>
        </xsl:call-template>
        <xsl:text>"</xsl:text>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$value"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="double-quotes">
    <xsl:param name="s"/>
    <xsl:choose>
      <xsl:when test="contains($s, '&quot;')">
        <xsl:value-of select="substring-before($s, '&quot;')"/>
        <xsl:text>""</xsl:text>
        <xsl:call-template name="double-quotes">
          <xsl:with-param name="s" select="substring-after($s, '&quot;')"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$s"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

</xsl:stylesheet>
