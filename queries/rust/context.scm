; Context structure of a Rust file, for the context bundle (see docs/queries.md).
;
; `@context.item` is an item that can enclose a selection; its `@context.body` is the part after
; the signature, so signature = item start .. body start. `@name` names the item.
; `@context.test` is a test function, `@context.test_module` a `#[cfg(test)]` module or one
; named `tests`, `@context.import` a `use` declaration.

(function_item name: (identifier) @name body: (block) @context.body) @context.item
(impl_item type: (_) @name body: (declaration_list) @context.body) @context.item
(trait_item name: (type_identifier) @name body: (declaration_list) @context.body) @context.item
(mod_item name: (identifier) @name body: (declaration_list) @context.body) @context.item

(
  (attribute_item (attribute [
    (identifier) @attr
    (scoped_identifier name: (identifier) @attr)
  ]))
  .
  [(attribute_item) (line_comment) (block_comment)]*
  .
  (function_item name: (identifier) @name) @context.test
  (#match? @attr "^(test|rstest|quickcheck|proptest)$")
)

(
  (attribute_item (attribute (identifier) @attr arguments: (token_tree (identifier) @arg)))
  .
  [(attribute_item) (line_comment) (block_comment)]*
  .
  (mod_item name: (identifier) @name) @context.test_module
  (#eq? @attr "cfg")
  (#eq? @arg "test")
)

((mod_item name: (identifier) @name) @context.test_module
  (#eq? @name "tests"))

(use_declaration) @context.import
(extern_crate_declaration) @context.import
