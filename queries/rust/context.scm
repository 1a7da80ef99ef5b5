; Context structure of a Rust file, for the context bundle (see docs/queries.md).
;
; `@context.item` is an item that can enclose a selection; its `@context.body` is the part after
; the signature, so signature = item start .. body start. `@name` names the item.
; `@context.import` is a `use` declaration.
;
; Which inline module is a test module (`#[cfg(test)]`, or named `tests`) is read in
; structure.rs from the attributes above it: the query form for it, `(attribute_item …) .
; [(attribute_item) (line_comment) (block_comment)]* . (mod_item …)`, lets every attribute and
; comment start a match; without it and the unused test-function pattern of the same form, the
; query takes about 30% less time per bundle. Test functions come from the index (`tags.scm`).

(function_item name: (identifier) @name body: (block) @context.body) @context.item
(impl_item type: (_) @name body: (declaration_list) @context.body) @context.item
(trait_item name: (type_identifier) @name body: (declaration_list) @context.body) @context.item
(mod_item name: (identifier) @name body: (declaration_list) @context.body) @context.item

(use_declaration) @context.import
(extern_crate_declaration) @context.import
