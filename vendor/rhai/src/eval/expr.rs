//! Module defining functions for evaluating an expression.

use super::{Caches, EvalContext, GlobalRuntimeState, Target};
use crate::ast::Expr;
use crate::packages::string_basic::{print_with_func_raw, FUNC_TO_STRING};
use crate::types::dynamic::AccessMode;
use crate::{Dynamic, Engine, RhaiResult, RhaiResultOf, Scope, ERR};
#[cfg(feature = "no_std")]
use std::prelude::v1::*;
use std::{convert::TryInto, fmt::Write, num::NonZeroUsize};

impl Engine {
    /// Search for a module within an imports stack.
    #[cfg(not(feature = "no_module"))]
    #[inline]
    #[must_use]
    pub(crate) fn search_imports(
        &self,
        global: &GlobalRuntimeState,
        namespace: &crate::module::Namespace,
    ) -> Option<crate::SharedModule> {
        debug_assert!(!namespace.is_empty());

        let root = namespace.root();

        // Qualified - check if the root module is directly indexed
        if !global.always_search_scope {
            if let Some(index) = namespace.index {
                let offset = global.num_imports() - index.get();

                if let m @ Some(_) = global.get_shared_import(offset) {
                    return m;
                }
            }
        }

        // Do a text-match search if the index doesn't work
        global.find_import(root).map_or_else(
            || self.global_sub_modules.get(root).cloned(),
            |offset| global.get_shared_import(offset),
        )
    }
    /// Search for a variable within the scope
    ///
    /// # Panics
    ///
    /// Panics if `expr` is not [`Expr::Variable`].
    pub(crate) fn search_scope_only<'s>(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &'s mut Scope,
        this_ptr: Option<&'s mut Dynamic>,
        expr: &Expr,
    ) -> RhaiResultOf<Target<'s>> {
        let (var_name, index) = match expr {
            // Check if the variable is `this`
            Expr::ThisPtr(..) => unreachable!("Expr::ThisPtr should have been handled outside"),

            // No index if always search scope
            Expr::Variable(v, ..) if global.always_search_scope => (&v.1, 0),

            // Embedded index - short (u8)
            Expr::Variable(v, Some(i), ..) => (&v.1, i.get() as usize),
            // Embedded index - long (usize)
            Expr::Variable(v, None, ..) => {
                #[cfg(not(feature = "no_module"))]
                debug_assert!(v.2.is_empty(), "variable should not be namespace-qualified");
                (&v.1, v.0.map_or(0, NonZeroUsize::get))
            }

            _ => unreachable!("Expr::Variable expected but gets {:?}", expr),
        };

        // Check the variable resolver, if any
        if let Some(ref resolve_var) = self.resolve_var {
            let orig_scope_len = scope.len();

            let context = EvalContext::new(self, global, caches, scope, this_ptr);
            let resolved_var = resolve_var(var_name, index, context);

            if orig_scope_len != scope.len() {
                // The scope is changed, always search from now on
                global.always_search_scope = true;
            }

            match resolved_var {
                Ok(Some(mut result)) => {
                    result.set_access_mode(AccessMode::ReadOnly);
                    return Ok(result.into());
                }
                Ok(None) => (),
                Err(err) => return Err(err.fill_position(expr.position())),
            }
        }

        // Read it from the scope
        if let Some(scope_index) = (index > 0)
            .then_some(scope.len() - index)
            .or_else(|| scope.search(var_name))
        {
            return scope.get_mut_by_index(scope_index).try_into();
        }

        // Search constants in global modules
        if let Some(val) = self.global_modules.iter().find_map(|m| m.get_var(var_name)) {
            return Ok(val.into());
        }

        // Finally, see if it is a script function name and return a function pointer
        #[cfg(not(feature = "no_function"))]
        if let Some(func) = global
            .lib
            .iter()
            .flat_map(|m| m.iter_fn())
            .filter(|(f, _)| f.is_script())
            .filter(|(_, meta)| meta.name == var_name.as_str())
            .map(|(f, _)| f)
            .next()
        {
            let fn_def = func.get_script_fn_def().unwrap();
            let val: Dynamic = crate::FnPtr {
                name: var_name.clone(),
                curry: <_>::default(),
                typ: crate::types::fn_ptr::FnPtrType::Script {
                    num_params: fn_def.params.len(),
                    hash: crate::calc_fn_hash(None, &fn_def.name, fn_def.params.len()),
                },
            }
            .into();
            return Ok(val.into());
        }

        Err(ERR::ErrorVariableNotFound(var_name.to_string(), expr.position()).into())
    }
    /// Search for a variable within the scope or within imports,
    /// depending on whether the variable name is namespace-qualified.
    pub(crate) fn search_namespace<'s>(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &'s mut Scope,
        this_ptr: Option<&'s mut Dynamic>,
        expr: &Expr,
    ) -> RhaiResultOf<Target<'s>> {
        match expr {
            Expr::Variable(_, Some(_), _) => {
                self.search_scope_only(global, caches, scope, this_ptr, expr)
            }
            Expr::Variable(v, None, ..) => match &**v {
                // Qualified variable access
                #[cfg(not(feature = "no_module"))]
                (_, var_name, ns, hash_var) if !ns.is_empty() => {
                    // foo:bar::baz::VARIABLE
                    if let Some(module) = self.search_imports(global, ns) {
                        return module.get_qualified_var(*hash_var).map_or_else(
                            || {
                                let sep = crate::engine::NAMESPACE_SEPARATOR;

                                Err(ERR::ErrorVariableNotFound(
                                    format!("{ns}{sep}{var_name}"),
                                    ns.position(),
                                )
                                .into())
                            },
                            |mut target| {
                                // Module variables are constant
                                target.set_access_mode(AccessMode::ReadOnly);
                                Ok(target.into())
                            },
                        );
                    }

                    // global::VARIABLE
                    #[cfg(not(feature = "no_function"))]
                    if ns.path.len() == 1 && ns.root() == crate::engine::KEYWORD_GLOBAL {
                        if let Some(ref constants) = global.constants {
                            if let Some(value) = crate::func::locked_write(constants)
                                .unwrap()
                                .get_mut(var_name.as_str())
                            {
                                let mut target: Target = value.clone().into();
                                // Module variables are constant
                                target.as_mut().set_access_mode(AccessMode::ReadOnly);
                                return Ok(target);
                            }
                        }

                        let sep = crate::engine::NAMESPACE_SEPARATOR;

                        return Err(ERR::ErrorVariableNotFound(
                            format!("{ns}{sep}{var_name}"),
                            ns.position(),
                        )
                        .into());
                    }

                    Err(ERR::ErrorModuleNotFound(ns.to_string(), ns.position()).into())
                }

                // Normal variable access
                _ => self.search_scope_only(global, caches, scope, this_ptr, expr),
            },
            _ => unreachable!("Expr::Variable expected but gets {:?}", expr),
        }
    }
    /// Evaluate an expression.
    pub(crate) fn eval_expr(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        mut this_ptr: Option<&mut Dynamic>,
        expr: &Expr,
    ) -> RhaiResult {
        self.track_operation(global, expr.position())?;

        #[cfg(feature = "debugging")]
        let reset = self.dbg_reset(global, caches, scope, this_ptr.as_deref_mut(), expr)?;
        #[cfg(feature = "debugging")]
        defer! { global if Some(reset) => move |g| g.debugger_mut().reset_status(reset) }

        // Constants
        let is_simple_constant = match expr {
            Expr::DynamicConstant(..)
            | Expr::IntegerConstant(..)
            | Expr::CharConstant(..)
            | Expr::StringConstant(..)
            | Expr::BoolConstant(..)
            | Expr::Unit(..) => true,
            #[cfg(not(feature = "no_float"))]
            Expr::FloatConstant(..) => true,
            _ => false,
        };
        if is_simple_constant {
            if let Some(value) = expr.get_literal_value(Some(global)) {
                return Ok(value);
            }
        }

        // Other expressions
        match expr {
            Expr::FnCall(x, pos) => {
                self.eval_fn_call_expr(global, caches, scope, this_ptr, x, *pos)
            }

            Expr::ThisPtr(var_pos) => this_ptr
                .ok_or_else(|| ERR::ErrorUnboundThis(*var_pos).into())
                .cloned(),

            Expr::Variable(..) => self
                .search_namespace(global, caches, scope, this_ptr, expr)
                .map(Target::take_or_clone),

            Expr::InterpolatedString(x, _) => {
                let mut concat = crate::new_smart_string();

                for expr in &**x {
                    let item = &mut self
                        .eval_expr(global, caches, scope, this_ptr.as_deref_mut(), expr)?
                        .flatten();
                    let pos = expr.position();

                    if item.is_string() {
                        write!(concat, "{item}").unwrap();
                    } else {
                        let display =
                            print_with_func_raw(self, global, caches, FUNC_TO_STRING, item, pos);
                        write!(concat, "{display}").unwrap();
                    }

                    #[cfg(not(feature = "unchecked"))]
                    self.throw_on_size((0, 0, concat.len()))
                        .map_err(|err| err.fill_position(pos))?;
                }

                Ok(self.get_interned_string(concat).into())
            }

            #[cfg(not(feature = "no_index"))]
            Expr::Array(x, ..) => self.eval_array_literal(global, caches, scope, this_ptr, x, None),

            #[cfg(not(feature = "no_object"))]
            Expr::Map(x, ..) => self.eval_map_literal(global, caches, scope, this_ptr, x, None),

            Expr::And(x, ..) => {
                let mut value = Dynamic::TRUE;

                for expr in &***x {
                    if !self
                        .eval_expr(global, caches, scope, this_ptr.as_deref_mut(), expr)?
                        .as_bool()
                        .map_err(|typ| self.make_type_mismatch_err::<bool>(typ, expr.position()))?
                    {
                        value = Dynamic::FALSE;
                        break;
                    }
                }

                Ok(value)
            }

            Expr::Or(x, ..) => {
                let mut value = Dynamic::FALSE;

                for expr in &***x {
                    if self
                        .eval_expr(global, caches, scope, this_ptr.as_deref_mut(), expr)?
                        .as_bool()
                        .map_err(|typ| self.make_type_mismatch_err::<bool>(typ, expr.position()))?
                    {
                        value = Dynamic::TRUE;
                        break;
                    }
                }

                Ok(value)
            }

            Expr::Coalesce(x, ..) => {
                let mut value = Dynamic::UNIT;

                for expr in &***x {
                    value = self.eval_expr(global, caches, scope, this_ptr.as_deref_mut(), expr)?;

                    if !value.is_unit() {
                        break;
                    }
                }
                Ok(value)
            }

            #[cfg(not(feature = "no_custom_syntax"))]
            Expr::Custom(custom, pos) => {
                let expressions: crate::StaticVec<_> =
                    custom.inputs.iter().map(Into::into).collect();
                // The first token acts as the custom syntax's key
                let key_token = custom.tokens.first().unwrap();
                // The key should exist, unless the AST is compiled in a different Engine
                let custom_def = self.custom_syntax.get(key_token.as_str()).ok_or_else(|| {
                    Box::new(ERR::ErrorCustomSyntax(
                        format!("Invalid custom syntax prefix: {key_token}"),
                        custom.tokens.iter().map(<_>::to_string).collect(),
                        *pos,
                    ))
                })?;
                let mut context = EvalContext::new(self, global, caches, scope, this_ptr);

                (custom_def.func)(&mut context, &expressions, &custom.state)
                    .and_then(|r| self.check_data_size(r, expr.start_position()))
            }

            Expr::Stmt(x) => {
                self.eval_stmt_block(global, caches, scope, this_ptr, x.statements(), true)
            }

            #[cfg(not(feature = "no_index"))]
            Expr::Index(..) => {
                self.eval_dot_index_chain(global, caches, scope, this_ptr, expr, None, None)
            }

            #[cfg(not(feature = "no_object"))]
            Expr::Dot(..) => {
                self.eval_dot_index_chain(global, caches, scope, this_ptr, expr, None, None)
            }

            #[allow(unreachable_patterns)]
            _ => unreachable!("expression cannot be evaluated: {:?}", expr),
        }
    }

    /// Evaluate an array literal. With `tail` (the scope floor of the running script function,
    /// when this literal is the last expression of its body), an item that is a bare local
    /// variable which nothing after it can read is moved out of the scope (patch 5).
    #[cfg(not(feature = "no_index"))]
    fn eval_array_literal(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        mut this_ptr: Option<&mut Dynamic>,
        x: &[Expr],
        tail: Option<usize>,
    ) -> RhaiResult {
        let mut array = crate::Array::with_capacity(x.len());

        #[cfg(not(feature = "unchecked"))]
        let mut total_data_sizes = (0, 0, 0);

        for (i, item_expr) in x.iter().enumerate() {
            let later = x[i + 1..].iter();
            let value = self
                .eval_or_move_local(
                    global,
                    caches,
                    scope,
                    this_ptr.as_deref_mut(),
                    item_expr,
                    tail,
                    later,
                )?
                .flatten();

            #[cfg(not(feature = "unchecked"))]
            if self.has_data_size_limit() {
                let val_sizes = crate::eval::calc_data_sizes(&value, true);

                total_data_sizes = (
                    total_data_sizes.0 + val_sizes.0 + 1,
                    total_data_sizes.1 + val_sizes.1,
                    total_data_sizes.2 + val_sizes.2,
                );
                self.throw_on_size(total_data_sizes)
                    .map_err(|err| err.fill_position(item_expr.position()))?;
            }

            array.push(value);
        }

        Ok(Dynamic::from_array(array))
    }

    /// Evaluate an object map literal; `tail` as for
    /// [`eval_array_literal`][Engine::eval_array_literal], for its values.
    #[cfg(not(feature = "no_object"))]
    fn eval_map_literal(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        mut this_ptr: Option<&mut Dynamic>,
        x: &(crate::StaticVec<(crate::Ident, Expr)>, crate::Map),
        tail: Option<usize>,
    ) -> RhaiResult {
        let mut map = x.1.clone();

        #[cfg(not(feature = "unchecked"))]
        let mut total_data_sizes = (0, 0, 0);

        for (i, (key, value_expr)) in x.0.iter().enumerate() {
            let later = x.0[i + 1..].iter().map(|(_, e)| e);
            let value = self
                .eval_or_move_local(
                    global,
                    caches,
                    scope,
                    this_ptr.as_deref_mut(),
                    value_expr,
                    tail,
                    later,
                )?
                .flatten();

            #[cfg(not(feature = "unchecked"))]
            if self.has_data_size_limit() {
                let delta = crate::eval::calc_data_sizes(&value, true);
                total_data_sizes = (
                    total_data_sizes.0 + delta.0,
                    total_data_sizes.1 + delta.1 + 1,
                    total_data_sizes.2 + delta.2,
                );
                self.throw_on_size(total_data_sizes)
                    .map_err(|err| err.fill_position(value_expr.position()))?;
            }

            *map.get_mut(key.as_str()).unwrap() = value;
        }

        Ok(Dynamic::from_map(map))
    }

    /// Evaluate the last expression of a script function's body (patches 5 and 7 in
    /// `PATCHES.md`).
    ///
    /// The function's scope is discarded right after, so a local variable read here for the
    /// last time can be moved out instead of cloned: a bare variable, a bare variable item of
    /// an array or object map literal, a property of a local object map (`req.body`), and
    /// the same as the lone argument of a method chain's last call (`res.json(rows)`).
    /// `floor` is the scope length below the function's own variables. Everything else is
    /// evaluated as usual.
    pub(crate) fn eval_tail_expr(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        expr: &Expr,
        floor: usize,
    ) -> RhaiResult {
        match expr {
            Expr::Variable(..) => {
                let later = std::iter::empty();
                self.eval_or_move_local(global, caches, scope, this_ptr, expr, Some(floor), later)
            }
            #[cfg(not(feature = "no_index"))]
            Expr::Array(x, ..) => {
                self.track_operation(global, expr.position())?;
                self.eval_array_literal(global, caches, scope, this_ptr, x, Some(floor))
            }
            #[cfg(not(feature = "no_object"))]
            Expr::Map(x, ..) => {
                self.track_operation(global, expr.position())?;
                self.eval_map_literal(global, caches, scope, this_ptr, x, Some(floor))
            }
            #[cfg(not(feature = "no_object"))]
            Expr::Dot(..) => {
                if let Some(value) = self.move_local_property(global, scope, expr, floor)? {
                    return Ok(value);
                }
                match tail_chain_root(expr) {
                    Some(root) => {
                        // As `eval_expr` does before it evaluates the chain.
                        self.track_operation(global, expr.position())?;
                        let tail = Some((floor, root));
                        self.eval_dot_index_chain(global, caches, scope, this_ptr, expr, None, tail)
                    }
                    None => self.eval_expr(global, caches, scope, this_ptr, expr),
                }
            }
            _ => self.eval_expr(global, caches, scope, this_ptr, expr),
        }
    }

    /// Evaluate the lone argument of a function's last method call (patch 7): as a tail
    /// expression when it is something that may move (a variable, a property, a literal
    /// with variables in it) and cannot read `root`, the variable the call is made on, which
    /// is read after its argument; as any argument otherwise.
    #[cfg(not(feature = "no_object"))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn eval_tail_arg(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        arg: &Expr,
        floor: usize,
        root: &str,
    ) -> RhaiResult {
        // What `eval_tail_expr` may move from; a constant literal is `get_arg_value`'s.
        let movable = match arg {
            Expr::Variable(..) | Expr::Dot(..) => true,
            #[cfg(not(feature = "no_index"))]
            Expr::Array(..) => !arg.is_constant(),
            Expr::Map(..) => !arg.is_constant(),
            _ => false,
        };
        if movable && arg.walk(&mut Vec::new(), &mut |nodes| !may_read_variable(nodes, root)) {
            return self.eval_tail_expr(global, caches, scope, this_ptr, arg, floor);
        }
        self.get_arg_value(global, caches, scope, this_ptr, arg)
            .map(|(value, ..)| value)
    }

    /// `local.prop` as a function's last read of `local` (patch 7): when `local` may be moved
    /// (see [`tail_local_index`][Engine::tail_local_index]) and is an object map that has
    /// the property, the property's value is moved out of it. The operations counted are the
    /// three a read counts (the expression, the variable, the map lookup); `None` leaves the
    /// expression to be evaluated as usual.
    #[cfg(not(feature = "no_object"))]
    fn move_local_property(
        &self,
        global: &mut GlobalRuntimeState,
        scope: &mut Scope,
        expr: &Expr,
        floor: usize,
    ) -> RhaiResultOf<Option<Dynamic>> {
        let Expr::Dot(x, ..) = expr else {
            return Ok(None);
        };
        let Expr::Property(prop, ..) = &x.rhs else {
            return Ok(None);
        };
        let later = std::iter::empty();
        let Some(index) = self.tail_local_index(global, scope, &x.lhs, floor, later) else {
            return Ok(None);
        };
        let crate::types::dynamic::Union::Map(ref mut map, ..) = scope.get_mut_by_index(index).0
        else {
            return Ok(None);
        };
        let Some(value) = map.get_mut(prop.2.as_str()).filter(|v| !v.is_shared()) else {
            return Ok(None);
        };
        self.track_operation(global, expr.position())?;
        self.track_operation(global, x.lhs.position())?;
        self.track_operation(global, crate::Position::NONE)?;
        Ok(Some(std::mem::take(value)))
    }

    /// Evaluate `expr`; or, with `tail` (the running function's scope floor) and when `expr`
    /// is a local variable that nothing in `later` can read, move its value out of the scope
    /// (patch 5). Either way counts one operation, as a read does.
    #[allow(clippy::too_many_arguments)]
    fn eval_or_move_local<'e>(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        expr: &Expr,
        tail: Option<usize>,
        later: impl Iterator<Item = &'e Expr>,
    ) -> RhaiResult {
        match tail.and_then(|floor| self.tail_local_index(global, scope, expr, floor, later)) {
            Some(index) => {
                self.track_operation(global, expr.position())?;
                Ok(std::mem::take(scope.get_mut_by_index(index)))
            }
            None => self.eval_expr(global, caches, scope, this_ptr, expr),
        }
    }

    /// The scope index of the variable `expr` when its value may be moved out: `expr` is a
    /// plain (not namespace-qualified) variable found in the scope at or above `floor` (a
    /// local of the running function), its value is not shared (a closure may hold it), no
    /// variable resolver is installed, and nothing in `later` (what is evaluated after it)
    /// can read it: no variable of that name, no custom syntax, no `eval` or `is_def_var`,
    /// no sharing statement. The lookup is the one [`search_scope_only`][Engine::search_scope_only]
    /// does, so the same variable is found.
    fn tail_local_index<'e>(
        &self,
        global: &GlobalRuntimeState,
        scope: &Scope,
        expr: &Expr,
        floor: usize,
        later: impl Iterator<Item = &'e Expr>,
    ) -> Option<usize> {
        if self.resolve_var.is_some() {
            return None;
        }
        let Expr::Variable(v, short, ..) = expr else {
            return None;
        };
        #[cfg(not(feature = "no_module"))]
        if !v.2.is_empty() {
            return None;
        }
        let name = v.1.as_str();
        let offset = match short {
            _ if global.always_search_scope => 0,
            Some(i) => i.get() as usize,
            None => v.0.map_or(0, NonZeroUsize::get),
        };
        let index = (offset > 0)
            .then(|| scope.len() - offset)
            .or_else(|| scope.search(name))?;
        if index < floor || scope.get_entry_by_index(index).1.is_shared() {
            return None;
        }
        let mut path = Vec::new();
        for later_expr in later {
            path.clear();
            if !later_expr.walk(&mut path, &mut |nodes| !may_read_variable(nodes, name)) {
                return None;
            }
        }
        Some(index)
    }
}

/// The name of the root variable of a chain of property reads and method calls that ends in
/// a method call (`res.status(200).json(x)`), the shape patch 7 moves the last argument of.
#[cfg(not(feature = "no_object"))]
fn tail_chain_root(expr: &Expr) -> Option<&str> {
    let Expr::Dot(x, ..) = expr else {
        return None;
    };
    let Expr::Variable(v, ..) = &x.lhs else {
        return None;
    };
    #[cfg(not(feature = "no_module"))]
    if !v.2.is_empty() {
        return None;
    }
    let mut rhs = &x.rhs;
    loop {
        match rhs {
            Expr::MethodCall(..) => return Some(v.1.as_str()),
            Expr::Dot(y, ..) if matches!(y.lhs, Expr::MethodCall(..) | Expr::Property(..)) => {
                rhs = &y.rhs;
            }
            _ => return None,
        }
    }
}

/// Whether the last node of `nodes` may read the variable `name` (patch 5): a variable of
/// that name (qualified or not), custom syntax (it sees the scope), a call of `eval` or
/// `is_def_var`, or a statement that shares variables with a closure.
fn may_read_variable(nodes: &[crate::ast::ASTNode], name: &str) -> bool {
    use crate::ast::{ASTNode, Stmt};
    use crate::engine::{KEYWORD_EVAL, KEYWORD_IS_DEF_VAR};

    let is_scope_call = |f: &crate::ast::FnCallExpr| {
        f.name.as_str() == KEYWORD_EVAL || f.name.as_str() == KEYWORD_IS_DEF_VAR
    };
    match nodes.last() {
        Some(ASTNode::Expr(Expr::Variable(v, ..))) => v.1.as_str() == name,
        #[cfg(not(feature = "no_custom_syntax"))]
        Some(ASTNode::Expr(Expr::Custom(..))) => true,
        Some(ASTNode::Expr(Expr::FnCall(f, ..))) => is_scope_call(f),
        #[cfg(not(feature = "no_object"))]
        Some(ASTNode::Expr(Expr::MethodCall(f, ..))) => is_scope_call(f),
        Some(ASTNode::Stmt(Stmt::FnCall(f, ..))) => is_scope_call(f),
        #[cfg(not(feature = "no_closure"))]
        Some(ASTNode::Stmt(Stmt::Share(..))) => true,
        _ => false,
    }
}
