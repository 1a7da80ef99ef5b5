; Definitions and references for the workspace index (tree-sitter's tags conventions).
;
; Every pattern captures the whole item as `@definition.<kind>` or `@reference.<kind>` and its
; identifier as `@name`. Definitions also capture the outer doc comments (`///`, `/** */`) right
; before them as `@doc`; attributes between the doc and the item are allowed. The vocabulary is
; documented in docs/queries.md.

; ---- definitions -------------------------------------------------------------------------

(
  [(line_comment) (block_comment)]* @doc
  .
  (attribute_item)*
  .
  [
    (function_item name: (identifier) @name)
    (function_signature_item name: (identifier) @name)
  ] @definition.function
)

(
  [(line_comment) (block_comment)]* @doc
  .
  (attribute_item)*
  .
  [
    (struct_item name: (type_identifier) @name)
    (union_item name: (type_identifier) @name)
    (type_item name: (type_identifier) @name)
  ] @definition.struct
)

(
  [(line_comment) (block_comment)]* @doc
  .
  (attribute_item)*
  .
  (enum_item name: (type_identifier) @name) @definition.enum
)

(
  [(line_comment) (block_comment)]* @doc
  .
  (attribute_item)*
  .
  (trait_item name: (type_identifier) @name) @definition.trait
)

(
  [(line_comment) (block_comment)]* @doc
  .
  (attribute_item)*
  .
  (mod_item name: (identifier) @name) @definition.module
)

(
  [(line_comment) (block_comment)]* @doc
  .
  (attribute_item)*
  .
  [
    (const_item name: (identifier) @name)
    (static_item name: (identifier) @name)
  ] @definition.constant
)

(
  [(line_comment) (block_comment)]* @doc
  .
  (attribute_item)*
  .
  (macro_definition name: (identifier) @name) @definition.macro
)

; A function inside an `impl` or `trait` body is a method. It also matches the function
; pattern above; the index keeps the most specific kind for a node.
(impl_item body: (declaration_list
  (function_item name: (identifier) @name) @definition.method))
(trait_item body: (declaration_list
  [
    (function_item name: (identifier) @name)
    (function_signature_item name: (identifier) @name)
  ] @definition.method))

; ---- references --------------------------------------------------------------------------

(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call
(call_expression
  function: (generic_function function: [
    (identifier) @name
    (scoped_identifier name: (identifier) @name)
    (field_expression field: (field_identifier) @name)
  ])) @reference.call
(macro_invocation macro: (identifier) @name) @reference.call

; `Type::function()` and `module::item` name the path as well.
(scoped_identifier path: (identifier) @name) @reference.type
(scoped_type_identifier path: (identifier) @name) @reference.type
(type_identifier) @name @reference.type

; Constants and statics are written in upper case by convention; other bare identifiers are
; locals and would only add noise.
((identifier) @name @reference.constant
  (#match? @name "^[A-Z][A-Z0-9_]+$"))

(impl_item trait: (type_identifier) @name) @reference.implementation
(impl_item trait: (scoped_type_identifier name: (type_identifier) @name)) @reference.implementation
(impl_item trait: (generic_type type: (type_identifier) @name)) @reference.implementation
