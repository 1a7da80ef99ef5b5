;; id = "rust/xml-external-entities"
;; title = "XML parser resolves external entities or DTDs"
;; cwe = ["CWE-611", "CWE-776"]
;; severity = "high"
;; precision = "high"
;; anchors = [["xml_parse_", "dtd", "entities"]]
;; message = "The XML parser is configured to load DTDs or substitute entities, so a document can read local files, reach internal URLs or expand to gigabytes."
;; explanation = """
;; Most Rust XML parsers ignore DTDs, which is the safe default. Turning on entity substitution
;; (libxml2's `XML_PARSE_NOENT`), DTD loading (`XML_PARSE_DTDLOAD`, `XML_PARSE_DTDATTR`) or DTD
;; support (roxmltree's `allow_dtd: true`) lets a document declare `<!ENTITY x SYSTEM
;; "file:///etc/passwd">` (XXE) or nested entities that expand exponentially ("billion laughs").
;;
;; **Fix:** leave these options off for documents you did not write. If a DTD is needed, parse
;; trusted documents only, or validate against a schema you ship instead of one the document names.
;;
;; **Trade-off:** documents that rely on entities defined in their DTD will fail to parse; that is
;; intended for untrusted input.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/611.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn parse(xml: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
;;     let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() }; // finding
;;     roxmltree::Document::parse_with_options(xml, options)
;; }
;; ''',
;; '''
;; fn options() -> i32 {
;;     libxml2_sys::XML_PARSE_NONET as i32 | libxml2_sys::XML_PARSE_NOENT as i32 // finding
;; }
;; ''',
;; '''
;; fn parse(doc: &[u8]) {
;;     let flags = XML_PARSE_DTDLOAD | XML_PARSE_NONET; // finding
;;     read_memory(doc, flags);
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn parse(xml: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
;;     roxmltree::Document::parse(xml)
;; }
;; ''',
;; '''
;; fn parse(xml: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
;;     let options = roxmltree::ParsingOptions { allow_dtd: false, ..Default::default() };
;;     roxmltree::Document::parse_with_options(xml, options)
;; }
;; ''',
;; '''
;; use libxml2_sys::XML_PARSE_NOENT;
;; fn options() -> i32 {
;;     libxml2_sys::XML_PARSE_NONET as i32
;; }
;; ''',
;; ]

(binary_expression [(identifier) (scoped_identifier)] @finding
  (#match? @finding "(^|::)XML_PARSE_(NOENT|DTDLOAD|DTDATTR)$"))

(arguments [(identifier) (scoped_identifier)] @finding
  (#match? @finding "(^|::)XML_PARSE_(NOENT|DTDLOAD|DTDATTR)$"))

(type_cast_expression value: [(identifier) (scoped_identifier)] @finding
  (#match? @finding "(^|::)XML_PARSE_(NOENT|DTDLOAD|DTDATTR)$"))

(field_initializer
  field: (field_identifier) @field
  value: (boolean_literal) @value
  (#any-of? @field "allow_dtd" "resolve_entities" "load_external_dtd" "substitute_entities")
  (#eq? @value "true")) @finding

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments . (boolean_literal) @value .)
  (#any-of? @method "resolve_entities" "load_external_dtd" "set_resolve_entities" "substitute_entities")
  (#eq? @value "true")) @finding
