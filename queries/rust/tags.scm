; Definitions and references for the workspace index (tree-sitter's tags conventions).
;
; Every pattern captures the whole item as `@definition.<kind>` or `@reference.<kind>` and its
; identifier as `@name`. The vocabulary is documented in docs/queries.md.
;
; Doc comments are deliberately not captured here: the form that does it,
; `[(line_comment) (block_comment)]* @doc . (attribute_item)* . (item)`, lets every node start a
; match and made extraction five times slower on an 800-file workspace (4.4 s against 0.83 s).
; The index walks an item's preceding siblings for its `///` and `/** */` docs and attributes
; instead, which costs nothing measurable.

; ---- definitions -------------------------------------------------------------------------

(
  [
    (function_item name: (identifier) @name)
    (function_signature_item name: (identifier) @name)
  ] @definition.function
)

(
  [
    (struct_item name: (type_identifier) @name)
    (union_item name: (type_identifier) @name)
    (type_item name: (type_identifier) @name)
    (associated_type name: (type_identifier) @name)
  ] @definition.struct
)

(
  (enum_item name: (type_identifier) @name) @definition.enum
)

(
  (trait_item name: (type_identifier) @name) @definition.trait
)

(
  (mod_item name: (identifier) @name) @definition.module
)

(
  [
    (const_item name: (identifier) @name)
    (static_item name: (identifier) @name)
  ] @definition.constant
)

(
  (macro_definition name: (identifier) @name) @definition.macro
)

; Items written inside a macro invocation (`bitflags!`, `lazy_static!`, `thread_local!`, a
; `macro_rules!` inside `cfg_if!`) are flat tokens to the grammar; tags.rs reads them from the
; token tree with token patterns.
(macro_invocation (token_tree) @macro.items)

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

; Macro arguments (`assert_eq!(total(x), …)`, `format!("{}", f(y))`) are token trees, not
; expressions: a name followed by a parenthesised group is taken as a call there, and a
; capitalised name as a type.
(token_tree (identifier) @name @reference.call . (token_tree))
((token_tree (identifier) @name @reference.type)
  (#match? @name "^[A-Z]"))

(impl_item trait: (type_identifier) @name) @reference.implementation
(impl_item trait: (scoped_type_identifier name: (type_identifier) @name)) @reference.implementation
(impl_item trait: (generic_type type: (type_identifier) @name)) @reference.implementation
