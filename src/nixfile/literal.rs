//! Reading a flake without Nix: rnix (the NixOS project's parser) and a small lazy evaluator
//! of the forms gomod2nix flakes are written in, giving the same [`FlakeOutputs`] as
//! [`super::eval`] does with real Nix.
//!
//! **Accepted:** integers, floats, strings (`"…"` and `''…''`) with `${…}` of strings, paths
//! and packages; relative and absolute paths; lists; attribute sets (`rec` too, nested
//! `a.b = …` paths, `"${…}"` names), `inherit` and `inherit (x)`; `let … in`; functions
//! (`x: …`, `{ a, b ? default, ... }@all: …`) and their application; `with`; `.` selection
//! with `or`; `?`; `//`, `++`, `+` of strings and `==`/`!=`; `if`; `import` of the project's
//! own files; and, as stand-ins, what [`super::eval`]'s standin.nix gives: nixpkgs'
//! `legacyPackages.SYSTEM` and `import nixpkgs { … }` (overlays are not applied: the
//! stand-in already has gomod2nix's functions), `callPackage`, `buildGoApplication`,
//! `buildGoModule`, `buildEnv`, `dockerTools.*`, the packages kiln knows, flake-utils'
//! `eachDefaultSystem`/`eachSystem`/`mkApp`, gomod2nix's `legacyPackages` and nix2container.
//!
//! **Refused,** as an error at file:line:column naming the construct: `<nixpkgs>`-style search
//! paths, `~/` paths, `assert`, the old `let { … }`, arithmetic and other operators, an
//! attribute kiln's stand-ins do not have, a builtin it does not know. The hint says to
//! install Nix, for full evaluation.
//!
//! Evaluation is lazy as Nix's is (a binding is evaluated when used, once), so an unused
//! default such as default.nix's `pkgs ? (import (fetchTree …) { … })` is never looked at.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rnix::ast;

use super::{Call, FlakeOutputs, Location, OTHER_OUTPUTS, Value};

/// The system `packages.SYSTEM` is read for, as [`super::eval::SYSTEM`].
const SYSTEM: &str = super::eval::SYSTEM;
const SYSTEMS: &[&str] = &[
    "x86_64-linux",
    "aarch64-linux",
    "x86_64-darwin",
    "aarch64-darwin",
];

#[derive(Debug, thiserror::Error)]
pub enum LiteralError {
    #[error("{location}: {message}")]
    At { location: String, message: String },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl crate::diagnostic::Hint for LiteralError {
    fn hint(&self) -> Option<String> {
        match self {
            LiteralError::At { .. } => Some(
                "without nix-instantiate kiln reads only literal forms; install Nix (Debian's nix-bin gives nix-instantiate) and kiln evaluates the flake with real Nix".to_owned(),
            ),
            LiteralError::Read { .. } => None,
        }
    }
}

type Result<T> = std::result::Result<T, LiteralError>;

/// Read the flake in `folder` without Nix.
pub fn read(folder: &Path) -> Result<FlakeOutputs> {
    let evaluator = Evaluator {
        folder: folder.to_owned(),
    };
    let flake = evaluator.import(&folder.join("flake.nix"))?;
    let flake = force(&flake)?;
    let Val::Attrs(attrs) = &flake else {
        return Err(at_file(folder, "flake.nix", "a flake is an attribute set"));
    };
    let outputs_function = attrs
        .values
        .get("outputs")
        .ok_or_else(|| at_file(folder, "flake.nix", "the flake has no `outputs`"))?;
    let function = force(outputs_function)?;
    let names = match &function {
        Val::Lambda(closure) => closure.pattern_names(),
        _ => Vec::new(),
    };
    // `self` is the outputs themselves: a thunk filled once they exist.
    let self_slot: Thunk = Rc::new(RefCell::new(State::Forced(Val::Null)));
    let mut inputs = Attrs::default();
    for name in names {
        let value = match name.as_str() {
            "self" => self_slot.clone(),
            "nixpkgs" => value_thunk(standin_nixpkgs()),
            "flake-utils" => value_thunk(standin_flake_utils()),
            "gomod2nix" => value_thunk(standin_gomod2nix()),
            "nix2container" => value_thunk(standin_nix2container()),
            other => value_thunk(Val::Input(other.to_owned())),
        };
        inputs.values.insert(name, value);
    }
    let outputs = evaluator.apply(&function, value_thunk(Val::Attrs(Rc::new(inputs))), None)?;
    *self_slot.borrow_mut() = State::Forced(outputs.clone());
    let mut value = BTreeMap::new();
    if let Val::Attrs(outputs) = &outputs {
        for name in ["packages", "apps", "defaultPackage"] {
            let Some(thunk) = outputs.values.get(name) else {
                continue;
            };
            let mut set = force(thunk)?;
            if let Val::Attrs(per_system) = &set
                && let Some(for_system) = per_system.values.get(SYSTEM)
            {
                set = force(for_system)?;
            }
            value.insert(name.to_owned(), evaluator.deep(&set, 0)?);
        }
        // The other outputs by name only, unevaluated, as standin.nix gives them.
        let others = outputs
            .values
            .keys()
            .filter(|name| !matches!(name.as_str(), "packages" | "apps" | "defaultPackage"))
            .map(|name| Value::Str(name.clone()))
            .collect();
        value.insert(OTHER_OUTPUTS.to_owned(), Value::List(others));
    }
    Ok(FlakeOutputs::from_value(&Value::Attrs(value)))
}

fn at_file(folder: &Path, file: &str, message: &str) -> LiteralError {
    LiteralError::At {
        location: folder.join(file).display().to_string(),
        message: message.to_owned(),
    }
}

/// A Nix file's text, for line:column.
struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    fn location(&self, offset: usize) -> Location {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
        Location {
            file: self.path.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

/// A node's syntax (rowan's trait, reached through rnix's).
fn syntax<T: ast::AstNode>(node: &T) -> &rnix::SyntaxNode {
    node.syntax()
}

/// A value being evaluated.
#[derive(Clone)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Path(PathBuf),
    List(Vec<Thunk>),
    Attrs(Rc<Attrs>),
    Lambda(Rc<Closure>),
    Builtin(Builtin),
    /// A mapped function's result: its arguments, readable as attributes.
    Call(Rc<CallVal>),
    Package(String),
    Input(String),
}

#[derive(Default)]
struct Attrs {
    values: BTreeMap<String, Thunk>,
    positions: BTreeMap<String, Location>,
}

struct CallVal {
    function: String,
    args: Val,
}

#[derive(Clone)]
enum Builtin {
    /// A function kiln maps (`buildGoApplication`, `dockerTools.buildImage`, …).
    Mapped(String),
    CallPackage,
    /// `callPackage f` waiting for its overrides.
    CallPackageWith(Thunk),
    Import,
    EachSystem,
    /// `eachSystem systems`, waiting for the function.
    EachSystemWith,
    MkApp,
    /// A function whose result kiln does not look at (an overlay).
    Opaque,
}

struct Closure {
    param: ast::Param,
    body: ast::Expr,
    env: Env,
    source: Rc<Source>,
}

impl Closure {
    fn pattern_names(&self) -> Vec<String> {
        match &self.param {
            ast::Param::Pattern(pattern) => pattern
                .pat_entries()
                .filter_map(|entry| Some(ident_name(&entry.ident()?)))
                .collect(),
            ast::Param::IdentParam(_) => Vec::new(),
        }
    }
}

type Thunk = Rc<RefCell<State>>;

enum State {
    Pending(ast::Expr, Env, Rc<Source>),
    /// `inherit (FROM) NAME;`: FROM is evaluated when NAME is used, as in Nix (it may name a
    /// binding of the same `let`).
    Inherit(Box<InheritFrom>),
    Forcing,
    Forced(Val),
}

struct InheritFrom {
    from: ast::Expr,
    name: String,
    attr: ast::Attr,
    env: Env,
    source: Rc<Source>,
}

fn force_inherit(inherit: &InheritFrom) -> Result<Val> {
    let evaluator = Evaluator {
        folder: inherit
            .source
            .path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default(),
    };
    let from = evaluator.eval(&inherit.from, &inherit.env, &inherit.source)?;
    let thunk = evaluator.select(&from, &inherit.name).ok_or_else(|| {
        error_at(
            &inherit.source,
            &inherit.attr,
            format!(
                "`inherit ({}) {}`: {} has no `{}`",
                syntax(&inherit.from).text(),
                inherit.name,
                describe(&from),
                inherit.name
            ),
        )
    })?;
    force(&thunk)
}

fn value_thunk(value: Val) -> Thunk {
    Rc::new(RefCell::new(State::Forced(value)))
}

fn force(thunk: &Thunk) -> Result<Val> {
    let state = std::mem::replace(&mut *thunk.borrow_mut(), State::Forcing);
    match state {
        State::Forced(value) => {
            *thunk.borrow_mut() = State::Forced(value.clone());
            Ok(value)
        }
        State::Forcing => Err(LiteralError::At {
            location: "(flake)".to_owned(),
            message: "infinite recursion: a value that depends on itself".to_owned(),
        }),
        State::Pending(expr, env, source) => {
            let evaluator = Evaluator {
                folder: source.path.parent().map(Path::to_owned).unwrap_or_default(),
            };
            match evaluator.eval(&expr, &env, &source) {
                Ok(value) => {
                    *thunk.borrow_mut() = State::Forced(value.clone());
                    Ok(value)
                }
                Err(error) => {
                    *thunk.borrow_mut() = State::Pending(expr, env, source);
                    Err(error)
                }
            }
        }
        State::Inherit(inherit) => match force_inherit(&inherit) {
            Ok(value) => {
                *thunk.borrow_mut() = State::Forced(value.clone());
                Ok(value)
            }
            Err(error) => {
                *thunk.borrow_mut() = State::Inherit(inherit);
                Err(error)
            }
        },
    }
}

/// Variables in scope: a chain of frames, and the `with` sets (looked up last, innermost
/// first, as in Nix).
#[derive(Clone, Default)]
struct Env(Option<Rc<Frame>>);

struct Frame {
    variables: RefCell<BTreeMap<String, Thunk>>,
    with: Option<Thunk>,
    parent: Env,
}

impl Env {
    fn child(&self, variables: BTreeMap<String, Thunk>) -> Env {
        Env(Some(Rc::new(Frame {
            variables: RefCell::new(variables),
            with: None,
            parent: self.clone(),
        })))
    }

    fn with(&self, namespace: Thunk) -> Env {
        Env(Some(Rc::new(Frame {
            variables: RefCell::new(BTreeMap::new()),
            with: Some(namespace),
            parent: self.clone(),
        })))
    }

    fn lookup(&self, name: &str) -> Result<Option<Thunk>> {
        let mut frame = self.0.clone();
        while let Some(current) = frame {
            if let Some(thunk) = current.variables.borrow().get(name) {
                return Ok(Some(thunk.clone()));
            }
            frame = current.parent.0.clone();
        }
        let mut frame = self.0.clone();
        while let Some(current) = frame {
            if let Some(namespace) = &current.with
                && let Val::Attrs(attrs) = force(namespace)?
                && let Some(thunk) = attrs.values.get(name)
            {
                return Ok(Some(thunk.clone()));
            }
            frame = current.parent.0.clone();
        }
        Ok(None)
    }
}

struct Evaluator {
    /// The folder of the file being read (relative paths start there).
    folder: PathBuf,
}

fn ident_name(ident: &ast::Ident) -> String {
    syntax(ident).text().to_string()
}

fn error_at<T: ast::AstNode>(
    source: &Source,
    node: &T,
    message: impl Into<String>,
) -> LiteralError {
    let offset = usize::from(syntax(node).text_range().start());
    LiteralError::At {
        location: source.location(offset).to_string(),
        message: message.into(),
    }
}

impl Evaluator {
    fn import(&self, path: &Path) -> Result<Thunk> {
        let path = if path.is_dir() {
            path.join("default.nix")
        } else {
            path.to_owned()
        };
        let text = fs_err::read_to_string(&path).map_err(|source| LiteralError::Read {
            path: path.clone(),
            source,
        })?;
        let parse = rnix::Root::parse(&text);
        let source = Rc::new(Source {
            path: path.clone(),
            text: text.clone(),
        });
        if let Some(error) = parse.errors().first() {
            let offset = match error {
                rnix::ParseError::Unexpected(range)
                | rnix::ParseError::UnexpectedExtra(range)
                | rnix::ParseError::UnexpectedWanted(_, range, _)
                | rnix::ParseError::UnexpectedDoubleBind(range)
                | rnix::ParseError::DuplicatedArgs(range, _) => usize::from(range.start()),
                _ => text.len(),
            };
            return Err(LiteralError::At {
                location: source.location(offset).to_string(),
                message: format!("Nix syntax error: {error}"),
            });
        }
        let Some(expr) = parse.tree().expr() else {
            return Err(LiteralError::At {
                location: path.display().to_string(),
                message: "the file holds no expression".to_owned(),
            });
        };
        Ok(Rc::new(RefCell::new(State::Pending(
            expr,
            Env::default(),
            source,
        ))))
    }

    fn thunk(&self, expr: ast::Expr, env: &Env, source: &Rc<Source>) -> Thunk {
        Rc::new(RefCell::new(State::Pending(
            expr,
            env.clone(),
            source.clone(),
        )))
    }

    fn eval(&self, expr: &ast::Expr, env: &Env, source: &Rc<Source>) -> Result<Val> {
        match expr {
            ast::Expr::Literal(literal) => match literal.kind() {
                ast::LiteralKind::Integer(integer) => integer
                    .value()
                    .map(Val::Int)
                    .map_err(|_| error_at(source, literal, "an integer out of range")),
                ast::LiteralKind::Float(float) => float
                    .value()
                    .map(Val::Float)
                    .map_err(|_| error_at(source, literal, "a float kiln cannot read")),
                ast::LiteralKind::Uri(_) => Err(error_at(source, literal, "a URI literal")),
            },
            ast::Expr::Str(text) => {
                let mut out = String::new();
                for part in text.normalized_parts() {
                    match part {
                        ast::InterpolPart::Literal(literal) => out.push_str(&literal),
                        ast::InterpolPart::Interpolation(interpolation) => {
                            let Some(inner) = interpolation.expr() else {
                                return Err(error_at(source, &interpolation, "an empty `${}`"));
                            };
                            let value = self.eval(&inner, env, source)?;
                            out.push_str(&self.coerce(&value, &interpolation, source)?);
                        }
                    }
                }
                Ok(Val::Str(out))
            }
            ast::Expr::PathRel(path) => {
                let parts = path.parts();
                let mut text = String::new();
                for part in parts {
                    match part {
                        ast::InterpolPart::Literal(content) => text.push_str(content.text()),
                        ast::InterpolPart::Interpolation(interpolation) => {
                            return Err(error_at(source, &interpolation, "`${…}` in a path"));
                        }
                    }
                }
                // Relative to the file it is written in, as in Nix.
                let base = source.path.parent().unwrap_or(&self.folder);
                Ok(Val::Path(normalize(&base.join(text))))
            }
            ast::Expr::PathAbs(path) => {
                let text: String = path
                    .parts()
                    .into_iter()
                    .filter_map(|part| match part {
                        ast::InterpolPart::Literal(content) => Some(content.text().to_owned()),
                        ast::InterpolPart::Interpolation(_) => None,
                    })
                    .collect();
                Ok(Val::Path(normalize(Path::new(&text))))
            }
            ast::Expr::PathSearch(path) => Err(error_at(
                source,
                path,
                format!(
                    "the search path `{}` (the machine's NIX_PATH, which kiln does not read)",
                    syntax(path).text()
                ),
            )),
            ast::Expr::PathHome(path) => Err(error_at(source, path, "a `~/` path")),
            ast::Expr::List(list) => Ok(Val::List(
                list.items()
                    .map(|item| self.thunk(item, env, source))
                    .collect(),
            )),
            ast::Expr::AttrSet(set) => {
                let recursive = set.rec_token().is_some();
                self.attr_set(set, env, source, recursive)
                    .map(|(attrs, _)| Val::Attrs(Rc::new(attrs)))
            }
            ast::Expr::LetIn(let_in) => {
                let scope = env.child(BTreeMap::new());
                let mut bindings = Attrs::default();
                self.entries(let_in, &scope, source, &mut bindings)?;
                if let Some(frame) = &scope.0 {
                    frame.variables.borrow_mut().extend(bindings.values);
                }
                let body = let_in
                    .body()
                    .ok_or_else(|| error_at(source, let_in, "`let` without `in`"))?;
                self.eval(&body, &scope, source)
            }
            ast::Expr::Ident(ident) => {
                let name = ident_name(ident);
                match name.as_str() {
                    "true" => return Ok(Val::Bool(true)),
                    "false" => return Ok(Val::Bool(false)),
                    "null" => return Ok(Val::Null),
                    _ => {}
                }
                if let Some(thunk) = env.lookup(&name)? {
                    return force(&thunk);
                }
                match name.as_str() {
                    "import" => Ok(Val::Builtin(Builtin::Import)),
                    "builtins" => Ok(Val::Attrs(Rc::new(builtins_set()))),
                    _ => Err(error_at(
                        source,
                        ident,
                        format!("undefined variable `{name}`"),
                    )),
                }
            }
            ast::Expr::Select(select) => {
                let base = select
                    .expr()
                    .ok_or_else(|| error_at(source, select, "a selection of nothing"))?;
                let mut value = self.eval(&base, env, source)?;
                let path = select
                    .attrpath()
                    .ok_or_else(|| error_at(source, select, "a selection without a name"))?;
                for attr in path.attrs() {
                    let name = self.attr_name(&attr, env, source)?;
                    match self.select(&value, &name) {
                        Some(thunk) => value = force(&thunk)?,
                        None => {
                            return match select.default_expr() {
                                Some(default) => self.eval(&default, env, source),
                                None => Err(error_at(
                                    source,
                                    &attr,
                                    format!(
                                        "attribute `{name}` is not in {} (kiln's stand-ins for nixpkgs have only what kiln maps)",
                                        describe(&value)
                                    ),
                                )),
                            };
                        }
                    }
                }
                Ok(value)
            }
            ast::Expr::HasAttr(has) => {
                let base = has
                    .expr()
                    .ok_or_else(|| error_at(source, has, "`?` of nothing"))?;
                let mut value = self.eval(&base, env, source)?;
                let Some(path) = has.attrpath() else {
                    return Err(error_at(source, has, "`?` without a name"));
                };
                for attr in path.attrs() {
                    let name = self.attr_name(&attr, env, source)?;
                    match self.select(&value, &name) {
                        Some(thunk) => value = force(&thunk)?,
                        None => return Ok(Val::Bool(false)),
                    }
                }
                Ok(Val::Bool(true))
            }
            ast::Expr::Apply(apply) => {
                let (Some(function), Some(argument)) = (apply.lambda(), apply.argument()) else {
                    return Err(error_at(source, apply, "an incomplete application"));
                };
                let function = self.eval(&function, env, source)?;
                let argument = self.thunk(argument, env, source);
                self.apply(&function, argument, Some((source, apply)))
            }
            ast::Expr::Lambda(lambda) => {
                let (Some(param), Some(body)) = (lambda.param(), lambda.body()) else {
                    return Err(error_at(source, lambda, "an incomplete function"));
                };
                Ok(Val::Lambda(Rc::new(Closure {
                    param,
                    body,
                    env: env.clone(),
                    source: source.clone(),
                })))
            }
            ast::Expr::Paren(paren) => {
                let inner = paren
                    .expr()
                    .ok_or_else(|| error_at(source, paren, "empty parentheses"))?;
                self.eval(&inner, env, source)
            }
            ast::Expr::With(with) => {
                let (Some(namespace), Some(body)) = (with.namespace(), with.body()) else {
                    return Err(error_at(source, with, "an incomplete `with`"));
                };
                let scope = env.with(self.thunk(namespace, env, source));
                self.eval(&body, &scope, source)
            }
            ast::Expr::IfElse(if_else) => {
                let (Some(condition), Some(body), Some(else_body)) =
                    (if_else.condition(), if_else.body(), if_else.else_body())
                else {
                    return Err(error_at(source, if_else, "an incomplete `if`"));
                };
                match self.eval(&condition, env, source)? {
                    Val::Bool(true) => self.eval(&body, env, source),
                    Val::Bool(false) => self.eval(&else_body, env, source),
                    other => Err(error_at(
                        source,
                        &condition,
                        format!("`if` of {}, not a Boolean", describe(&other)),
                    )),
                }
            }
            ast::Expr::BinOp(binary) => self.binary(binary, env, source),
            ast::Expr::Root(root) => match root.expr() {
                Some(inner) => self.eval(&inner, env, source),
                None => Err(error_at(source, root, "an empty file")),
            },
            ast::Expr::Assert(node) => Err(error_at(
                source,
                node,
                "`assert` (not a literal form kiln reads without Nix)",
            )),
            ast::Expr::LegacyLet(node) => Err(error_at(source, node, "the old `let { … }` form")),
            ast::Expr::UnaryOp(node) => {
                Err(error_at(source, node, "a unary operator (`!` or `-`)"))
            }
            ast::Expr::CurPos(node) => Err(error_at(source, node, "`__curPos`")),
            ast::Expr::Error(node) => Err(error_at(source, node, "a syntax error")),
        }
    }

    fn binary(&self, binary: &ast::BinOp, env: &Env, source: &Rc<Source>) -> Result<Val> {
        let (Some(left), Some(right), Some(operator)) =
            (binary.lhs(), binary.rhs(), binary.operator())
        else {
            return Err(error_at(source, binary, "an incomplete operator"));
        };
        let left_value = self.eval(&left, env, source)?;
        let right_value = self.eval(&right, env, source)?;
        match (operator, left_value, right_value) {
            (ast::BinOpKind::Update, Val::Attrs(left), Val::Attrs(right)) => {
                let mut merged = Attrs::default();
                for (name, thunk) in left.values.iter().chain(right.values.iter()) {
                    merged.values.insert(name.clone(), thunk.clone());
                }
                for (name, location) in left.positions.iter().chain(right.positions.iter()) {
                    merged.positions.insert(name.clone(), location.clone());
                }
                Ok(Val::Attrs(Rc::new(merged)))
            }
            (ast::BinOpKind::Concat, Val::List(mut left), Val::List(right)) => {
                left.extend(right);
                Ok(Val::List(left))
            }
            (ast::BinOpKind::Add, Val::Str(left), Val::Str(right)) => Ok(Val::Str(left + &right)),
            (ast::BinOpKind::Add, Val::Path(left), Val::Str(right)) => Ok(Val::Path(
                PathBuf::from(format!("{}{right}", left.display())),
            )),
            (ast::BinOpKind::Equal | ast::BinOpKind::NotEqual, left, right) => {
                let equal = match (&left, &right) {
                    (Val::Str(a), Val::Str(b)) => a == b,
                    (Val::Int(a), Val::Int(b)) => a == b,
                    (Val::Bool(a), Val::Bool(b)) => a == b,
                    (Val::Null, Val::Null) => true,
                    _ => false,
                };
                Ok(Val::Bool(equal == (operator == ast::BinOpKind::Equal)))
            }
            (operator, left, right) => Err(error_at(
                source,
                binary,
                format!(
                    "the operator {operator:?} of {} and {} (not a literal form kiln reads without Nix)",
                    describe(&left),
                    describe(&right)
                ),
            )),
        }
    }

    /// A string of `value` for `${…}`.
    fn coerce<T: ast::AstNode>(
        &self,
        value: &Val,
        node: &T,
        source: &Rc<Source>,
    ) -> Result<String> {
        match value {
            Val::Str(text) => Ok(text.clone()),
            Val::Path(path) => Ok(path.display().to_string()),
            Val::Int(number) => Err(error_at(
                source,
                node,
                format!("`${{…}}` of the integer {number} (Nix refuses it too: use toString)"),
            )),
            Val::Call(call) => {
                let name = self
                    .select(&Val::Call(call.clone()), "pname")
                    .or_else(|| self.select(&Val::Call(call.clone()), "name"))
                    .map(|thunk| force(&thunk))
                    .transpose()?;
                let name = match name {
                    Some(Val::Str(name)) => name,
                    _ => call.function.clone(),
                };
                Ok(super::out_marker(&name))
            }
            Val::Package(name) => Ok(super::pkg_marker(name)),
            Val::Input(name) => Ok(format!("@kiln-input:{name}@")),
            Val::Attrs(attrs) => match attrs.values.get("outPath") {
                Some(thunk) => {
                    let out = force(thunk)?;
                    self.coerce(&out, node, source)
                }
                None => Err(error_at(source, node, "`${…}` of an attribute set")),
            },
            other => Err(error_at(
                source,
                node,
                format!("`${{…}}` of {}", describe(other)),
            )),
        }
    }

    fn select(&self, value: &Val, name: &str) -> Option<Thunk> {
        match value {
            Val::Attrs(attrs) => attrs.values.get(name).cloned(),
            Val::Call(call) => self.select(&call.args, name),
            Val::Package(package) if name == "name" || name == "pname" => {
                Some(value_thunk(Val::Str(package.clone())))
            }
            _ => None,
        }
    }

    fn attr_name(&self, attr: &ast::Attr, env: &Env, source: &Rc<Source>) -> Result<String> {
        match attr {
            ast::Attr::Ident(ident) => Ok(ident_name(ident)),
            ast::Attr::Str(text) => match self.eval(&ast::Expr::Str(text.clone()), env, source)? {
                Val::Str(name) => Ok(name),
                _ => Err(error_at(
                    source,
                    text,
                    "an attribute name that is not a string",
                )),
            },
            ast::Attr::Dynamic(dynamic) => {
                let Some(inner) = dynamic.expr() else {
                    return Err(error_at(source, dynamic, "an empty `${}` name"));
                };
                match self.eval(&inner, env, source)? {
                    Val::Str(name) => Ok(name),
                    other => Err(error_at(
                        source,
                        dynamic,
                        format!("an attribute name of {}", describe(&other)),
                    )),
                }
            }
        }
    }

    /// An attribute set's entries; `rec` ones see each other.
    fn attr_set(
        &self,
        set: &ast::AttrSet,
        env: &Env,
        source: &Rc<Source>,
        recursive: bool,
    ) -> Result<(Attrs, Env)> {
        let scope = if recursive {
            env.child(BTreeMap::new())
        } else {
            env.clone()
        };
        let mut attrs = Attrs::default();
        self.entries(set, &scope, source, &mut attrs)?;
        if recursive && let Some(frame) = &scope.0 {
            frame.variables.borrow_mut().extend(
                attrs
                    .values
                    .iter()
                    .map(|(name, thunk)| (name.clone(), thunk.clone())),
            );
        }
        Ok((attrs, scope))
    }

    /// `name = value;` (with nested paths) and `inherit` entries into `attrs`; values are
    /// evaluated in `env`.
    fn entries<N: HasEntryNode>(
        &self,
        node: &N,
        env: &Env,
        source: &Rc<Source>,
        attrs: &mut Attrs,
    ) -> Result<()> {
        for inherit in node.inherit_entries() {
            let from = inherit.from().and_then(|from| from.expr());
            for attr in inherit.attrs() {
                let name = self.attr_name(&attr, env, source)?;
                let thunk = match &from {
                    Some(from) => Rc::new(RefCell::new(State::Inherit(Box::new(InheritFrom {
                        from: from.clone(),
                        name: name.clone(),
                        attr: attr.clone(),
                        env: env.clone(),
                        source: source.clone(),
                    })))),
                    None => env.lookup(&name)?.ok_or_else(|| {
                        error_at(
                            source,
                            &attr,
                            format!("`inherit {name}`: undefined variable"),
                        )
                    })?,
                };
                let offset = usize::from(syntax(&attr).text_range().start());
                attrs
                    .positions
                    .insert(name.clone(), source.location(offset));
                attrs.values.insert(name, thunk);
            }
        }
        for entry in node.value_entries() {
            let (Some(path), Some(value)) = (entry.attrpath(), entry.value()) else {
                return Err(error_at(source, &entry, "an incomplete `name = value;`"));
            };
            let names: Vec<ast::Attr> = path.attrs().collect();
            let offset = usize::from(syntax(&entry).text_range().start());
            let location = source.location(offset);
            let mut names_text = Vec::new();
            for attr in &names {
                names_text.push(self.attr_name(attr, env, source)?);
            }
            insert_path(attrs, &names_text, self.thunk(value, env, source), location);
        }
        Ok(())
    }

    /// Apply `function` to `argument`.
    fn apply(
        &self,
        function: &Val,
        argument: Thunk,
        at: Option<(&Rc<Source>, &ast::Apply)>,
    ) -> Result<Val> {
        let refuse = |message: String| match at {
            Some((source, node)) => error_at(source, node, message),
            None => LiteralError::At {
                location: "(flake)".to_owned(),
                message,
            },
        };
        match function {
            Val::Lambda(closure) => {
                let mut variables = BTreeMap::new();
                match &closure.param {
                    ast::Param::IdentParam(param) => {
                        let name = param
                            .ident()
                            .map(|ident| ident_name(&ident))
                            .unwrap_or_default();
                        variables.insert(name, argument);
                    }
                    ast::Param::Pattern(pattern) => {
                        let given = force(&argument)?;
                        let given_attrs = match &given {
                            Val::Attrs(attrs) => attrs.clone(),
                            other => {
                                return Err(refuse(format!(
                                    "a function taking an attribute set applied to {}",
                                    describe(other)
                                )));
                            }
                        };
                        let scope = closure.env.child(BTreeMap::new());
                        for entry in pattern.pat_entries() {
                            let Some(ident) = entry.ident() else { continue };
                            let name = ident_name(&ident);
                            let thunk = match given_attrs.values.get(&name) {
                                Some(thunk) => thunk.clone(),
                                None => match entry.default() {
                                    Some(default) => self.thunk(default, &scope, &closure.source),
                                    None => {
                                        return Err(error_at(
                                            &closure.source,
                                            &ident,
                                            format!(
                                                "the function needs `{name}`, and kiln's stand-ins do not give it"
                                            ),
                                        ));
                                    }
                                },
                            };
                            variables.insert(name, thunk);
                        }
                        if let Some(bind) = pattern.pat_bind().and_then(|bind| bind.ident()) {
                            variables.insert(ident_name(&bind), value_thunk(given.clone()));
                        }
                        if let Some(frame) = &scope.0 {
                            frame.variables.borrow_mut().extend(variables);
                        }
                        return self.eval(&closure.body, &scope, &closure.source);
                    }
                }
                let scope = closure.env.child(variables);
                self.eval(&closure.body, &scope, &closure.source)
            }
            Val::Builtin(builtin) => self.apply_builtin(builtin, argument, &refuse),
            other => Err(refuse(format!("{} applied as a function", describe(other)))),
        }
    }

    fn apply_builtin(
        &self,
        builtin: &Builtin,
        argument: Thunk,
        refuse: &dyn Fn(String) -> LiteralError,
    ) -> Result<Val> {
        match builtin {
            Builtin::Mapped(function) => {
                let args = force(&argument)?;
                Ok(Val::Call(Rc::new(CallVal {
                    function: function.clone(),
                    args,
                })))
            }
            Builtin::CallPackage => Ok(Val::Builtin(Builtin::CallPackageWith(argument))),
            Builtin::CallPackageWith(function) => {
                let mut function = force(function)?;
                if let Val::Path(path) = &function {
                    let importer = Evaluator {
                        folder: self.folder.clone(),
                    };
                    function = force(&importer.import(path)?)?;
                }
                let overrides = match force(&argument)? {
                    Val::Attrs(attrs) => attrs,
                    other => {
                        return Err(refuse(format!(
                            "callPackage's overrides are {}",
                            describe(&other)
                        )));
                    }
                };
                let pkgs = standin_pkgs();
                let mut given = Attrs::default();
                if let Val::Lambda(closure) = &function {
                    for name in closure.pattern_names() {
                        let value = overrides.values.get(&name).cloned().or_else(|| {
                            if name == "pkgs" {
                                Some(value_thunk(Val::Attrs(pkgs.clone())))
                            } else {
                                pkgs.values.get(&name).cloned()
                            }
                        });
                        if let Some(value) = value {
                            given.values.insert(name, value);
                        }
                    }
                }
                self.apply(&function, value_thunk(Val::Attrs(Rc::new(given))), None)
            }
            Builtin::Import => match force(&argument)? {
                Val::Path(path) => {
                    let importer = Evaluator {
                        folder: path.parent().map(Path::to_owned).unwrap_or_default(),
                    };
                    force(&importer.import(&path)?)
                }
                // `import nixpkgs { … }`: the stand-in nixpkgs is a function of its settings.
                Val::Attrs(attrs) if attrs.values.contains_key("__kiln_nixpkgs") => {
                    Ok(Val::Lambda(Rc::new(pkgs_function()?)))
                }
                other => Err(refuse(format!("`import` of {}", describe(&other)))),
            },
            Builtin::EachSystem => {
                let function = force(&argument)?;
                let result =
                    self.apply(&function, value_thunk(Val::Str(SYSTEM.to_owned())), None)?;
                let Val::Attrs(result) = result else {
                    return Err(refuse(
                        "eachDefaultSystem's function gave no attribute set".to_owned(),
                    ));
                };
                let mut per_system = Attrs::default();
                for (name, thunk) in &result.values {
                    let mut inner = Attrs::default();
                    inner.values.insert(SYSTEM.to_owned(), thunk.clone());
                    per_system
                        .values
                        .insert(name.clone(), value_thunk(Val::Attrs(Rc::new(inner))));
                }
                Ok(Val::Attrs(Rc::new(per_system)))
            }
            Builtin::EachSystemWith => Ok(Val::Builtin(Builtin::EachSystem)),
            Builtin::MkApp => {
                let args = force(&argument)?;
                let drv = self
                    .select(&args, "drv")
                    .ok_or_else(|| refuse("mkApp without `drv`".to_owned()))?;
                let drv = force(&drv)?;
                let name = match self
                    .select(&drv, "pname")
                    .or_else(|| self.select(&drv, "name"))
                {
                    Some(thunk) => match force(&thunk)? {
                        Val::Str(name) => name,
                        _ => String::new(),
                    },
                    None => String::new(),
                };
                let exe_path = match self.select(&args, "exePath") {
                    Some(thunk) => match force(&thunk)? {
                        Val::Str(path) => path,
                        _ => format!("/bin/{name}"),
                    },
                    None => format!("/bin/{name}"),
                };
                let mut app = Attrs::default();
                app.values
                    .insert("type".to_owned(), value_thunk(Val::Str("app".to_owned())));
                app.values.insert(
                    "program".to_owned(),
                    value_thunk(Val::Str(format!("{}{exe_path}", super::out_marker(&name)))),
                );
                Ok(Val::Attrs(Rc::new(app)))
            }
            Builtin::Opaque => Ok(Val::Builtin(Builtin::Opaque)),
        }
    }

    /// The value as [`Value`], every thunk forced.
    fn deep(&self, value: &Val, depth: usize) -> Result<Value> {
        if depth > 64 {
            return Ok(Value::Null);
        }
        Ok(match value {
            Val::Null => Value::Null,
            Val::Bool(value) => Value::Bool(*value),
            Val::Int(value) => Value::Int(*value),
            Val::Float(value) => Value::Float(*value),
            Val::Str(text) => Value::Str(text.clone()),
            Val::Path(path) => Value::Path(path.clone()),
            Val::List(items) => Value::List(
                items
                    .iter()
                    .map(|item| self.deep(&force(item)?, depth + 1))
                    .collect::<Result<_>>()?,
            ),
            Val::Attrs(attrs) => Value::Attrs(
                attrs
                    .values
                    .iter()
                    .map(|(name, thunk)| Ok((name.clone(), self.deep(&force(thunk)?, depth + 1)?)))
                    .collect::<Result<_>>()?,
            ),
            Val::Lambda(_) | Val::Builtin(_) => Value::Function,
            Val::Call(call) => {
                let positions = match &call.args {
                    Val::Attrs(attrs) => attrs.positions.clone(),
                    _ => BTreeMap::new(),
                };
                Value::Call(Box::new(Call {
                    function: call.function.clone(),
                    args: self.deep(&call.args, depth + 1)?,
                    positions,
                }))
            }
            Val::Package(name) => Value::Package(name.clone()),
            Val::Input(name) => Value::Input(name.clone()),
        })
    }
}

/// `let`-like nodes and attribute sets: their `inherit` and `name = value;` entries.
trait HasEntryNode {
    fn inherit_entries(&self) -> Vec<ast::Inherit>;
    fn value_entries(&self) -> Vec<ast::AttrpathValue>;
}

impl<T: ast::HasEntry> HasEntryNode for T {
    fn inherit_entries(&self) -> Vec<ast::Inherit> {
        self.inherits().collect()
    }
    fn value_entries(&self) -> Vec<ast::AttrpathValue> {
        self.attrpath_values().collect()
    }
}

/// `a.b.c = value`: nested sets made as needed (merging with ones written before).
fn insert_path(attrs: &mut Attrs, names: &[String], value: Thunk, location: Location) {
    let Some((first, rest)) = names.split_first() else {
        return;
    };
    if rest.is_empty() {
        attrs.positions.insert(first.clone(), location);
        attrs.values.insert(first.clone(), value);
        return;
    }
    let mut inner = Attrs::default();
    if let Some(existing) = attrs.values.get(first)
        && let Ok(Val::Attrs(existing)) = force(existing)
    {
        for (name, thunk) in &existing.values {
            inner.values.insert(name.clone(), thunk.clone());
        }
        inner.positions = existing.positions.clone();
    }
    insert_path(&mut inner, rest, value, location.clone());
    attrs.positions.entry(first.clone()).or_insert(location);
    attrs
        .values
        .insert(first.clone(), value_thunk(Val::Attrs(Rc::new(inner))));
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn describe(value: &Val) -> String {
    match value {
        Val::Null => "null".to_owned(),
        Val::Bool(_) => "a Boolean".to_owned(),
        Val::Int(_) => "an integer".to_owned(),
        Val::Float(_) => "a float".to_owned(),
        Val::Str(_) => "a string".to_owned(),
        Val::Path(_) => "a path".to_owned(),
        Val::List(_) => "a list".to_owned(),
        Val::Attrs(_) => "an attribute set".to_owned(),
        Val::Lambda(_) | Val::Builtin(_) => "a function".to_owned(),
        Val::Call(call) => format!("the result of {}", call.function),
        Val::Package(name) => format!("the package {name}"),
        Val::Input(name) => format!("the flake input `{name}` (kiln has no stand-in for it)"),
    }
}

fn set(pairs: Vec<(&str, Val)>) -> Rc<Attrs> {
    let mut attrs = Attrs::default();
    for (name, value) in pairs {
        attrs.values.insert(name.to_owned(), value_thunk(value));
    }
    Rc::new(attrs)
}

fn per_system(value: Val) -> Val {
    let thunk = value_thunk(value);
    let mut attrs = Attrs::default();
    for system in SYSTEMS {
        attrs.values.insert((*system).to_owned(), thunk.clone());
    }
    Val::Attrs(Rc::new(attrs))
}

fn mapped(name: &str) -> Val {
    Val::Builtin(Builtin::Mapped(name.to_owned()))
}

fn package(name: &str) -> Val {
    Val::Package(name.to_owned())
}

fn gomod2nix_pkgs() -> Vec<(&'static str, Val)> {
    vec![
        ("buildGoApplication", mapped("buildGoApplication")),
        ("mkGoEnv", mapped("mkGoEnv")),
        ("gomod2nix", package("gomod2nix")),
    ]
}

/// standin.nix's nixpkgs, as values.
fn standin_pkgs() -> Rc<Attrs> {
    let mut pairs = gomod2nix_pkgs();
    pairs.extend([
        ("system", Val::Str(SYSTEM.to_owned())),
        ("buildGoModule", mapped("buildGoModule")),
        ("buildEnv", mapped("buildEnv")),
        ("mkShell", mapped("mkShell")),
        ("callPackage", Val::Builtin(Builtin::CallPackage)),
        (
            "dockerTools",
            Val::Attrs(set(vec![
                ("buildImage", mapped("dockerTools.buildImage")),
                ("buildLayeredImage", mapped("dockerTools.buildLayeredImage")),
                (
                    "streamLayeredImage",
                    mapped("dockerTools.streamLayeredImage"),
                ),
                ("fakeNss", package("dockerTools.fakeNss")),
                ("caCertificates", package("dockerTools.caCertificates")),
                ("binSh", package("dockerTools.binSh")),
                ("usrBinEnv", package("dockerTools.usrBinEnv")),
            ])),
        ),
        (
            "lib",
            Val::Attrs(set(vec![(
                "fakeHash",
                Val::Str("sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()),
            )])),
        ),
    ]);
    for name in [
        "cacert",
        "tzdata",
        "busybox",
        "bash",
        "bashInteractive",
        "coreutils",
        "go",
        "go_1_21",
        "go_1_22",
        "go_1_23",
        "go_1_24",
        "go_1_25",
        "gopls",
        "gotools",
        "golangci-lint",
    ] {
        pairs.push((name, package(name)));
    }
    set(pairs)
}

/// `import nixpkgs`: a function of `{ system, overlays, … }` giving the stand-in nixpkgs.
fn pkgs_function() -> Result<Closure> {
    let text = "{ ... }: __kiln_pkgs";
    let parse = rnix::Root::parse(text);
    let Some(ast::Expr::Lambda(lambda)) = parse.tree().expr() else {
        return Err(LiteralError::At {
            location: "(kiln)".to_owned(),
            message: "the stand-in nixpkgs does not parse".to_owned(),
        });
    };
    let (Some(param), Some(body)) = (lambda.param(), lambda.body()) else {
        return Err(LiteralError::At {
            location: "(kiln)".to_owned(),
            message: "the stand-in nixpkgs does not parse".to_owned(),
        });
    };
    let mut variables = BTreeMap::new();
    variables.insert(
        "__kiln_pkgs".to_owned(),
        value_thunk(Val::Attrs(standin_pkgs())),
    );
    Ok(Closure {
        param,
        body,
        env: Env::default().child(variables),
        source: Rc::new(Source {
            path: PathBuf::from("(kiln's stand-in nixpkgs)"),
            text: text.to_owned(),
        }),
    })
}

fn standin_nixpkgs() -> Val {
    Val::Attrs(set(vec![
        ("__kiln_nixpkgs", Val::Bool(true)),
        ("legacyPackages", per_system(Val::Attrs(standin_pkgs()))),
        ("lib", Val::Attrs(set(vec![]))),
    ]))
}

fn standin_flake_utils() -> Val {
    let systems: Vec<Thunk> = SYSTEMS
        .iter()
        .map(|system| value_thunk(Val::Str((*system).to_owned())))
        .collect();
    Val::Attrs(set(vec![(
        "lib",
        Val::Attrs(set(vec![
            ("eachDefaultSystem", Val::Builtin(Builtin::EachSystem)),
            ("eachSystem", Val::Builtin(Builtin::EachSystemWith)),
            ("defaultSystems", Val::List(systems.clone())),
            ("allSystems", Val::List(systems)),
            ("mkApp", Val::Builtin(Builtin::MkApp)),
        ])),
    )]))
}

fn standin_gomod2nix() -> Val {
    Val::Attrs(set(vec![
        (
            "legacyPackages",
            per_system(Val::Attrs(set(gomod2nix_pkgs()))),
        ),
        (
            "overlays",
            Val::Attrs(set(vec![("default", Val::Builtin(Builtin::Opaque))])),
        ),
    ]))
}

fn standin_nix2container() -> Val {
    Val::Attrs(set(vec![(
        "packages",
        per_system(Val::Attrs(set(vec![(
            "nix2container",
            Val::Attrs(set(vec![(
                "buildImage",
                mapped("nix2container.buildImage"),
            )])),
        )]))),
    )]))
}

fn builtins_set() -> Attrs {
    let mut attrs = Attrs::default();
    attrs.values.insert(
        "import".to_owned(),
        value_thunk(Val::Builtin(Builtin::Import)),
    );
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(variant: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/nix-flake")
            .join(variant)
    }

    /// The literal reader gives the conversion real Nix gives (tests/cli/from_nix.rs checks
    /// that one against the built image).
    #[test]
    fn the_fixture_flakes_read_as_nix_reads_them() {
        for variant in ["container", "inline", "contents"] {
            let folder = fixture(variant);
            let outputs = read(&folder).unwrap_or_else(|error| panic!("{variant}: {error}"));
            let module = super::super::mapping::GoModule {
                path: "example.com/hello".to_owned(),
            };
            let conversion =
                super::super::mapping::convert(&outputs, &folder, Some(&module)).unwrap();
            assert!(
                conversion.not_carried.is_empty(),
                "{variant}: {:?}",
                conversion.not_carried
            );
            assert!(
                conversion.kiln_toml.contains("[packages.default]\nname = \"hello\"\nversion = \"0.3.1\"\nldflags = [\"-s\", \"-w\", \"-X main.version=0.3.1\"]\n"),
                "{variant}: {}",
                conversion.kiln_toml
            );
            let image = conversion
                .included
                .first()
                .map_or(conversion.kiln_toml.clone(), |(_, text)| text.clone());
            assert!(
                image.contains("cmd = [\"/bin/hello\"]"),
                "{variant}: {image}"
            );
            assert!(
                image.contains("env = { PORT = \"8080\" }"),
                "{variant}: {image}"
            );
            assert!(
                image.contains("expose = [\"8080/tcp\"]"),
                "{variant}: {image}"
            );
        }
    }

    #[test]
    fn what_is_not_literal_is_an_error_at_its_position() {
        let folder = tempfile::tempdir().unwrap();
        for (text, expected) in [
            (
                "{ outputs = { self }: { packages.x = assert true; 1; }; }",
                "flake.nix:1:38: `assert` (not a literal form kiln reads without Nix)",
            ),
            (
                "{ outputs = { self }: {\n  packages = import <nixpkgs> { };\n}; }",
                "flake.nix:2:21: the search path `<nixpkgs>` (the machine's NIX_PATH, which kiln does not read)",
            ),
            ("{ outputs = ", "flake.nix:1:13: Nix syntax error"),
            (
                "{ outputs = { self, nixpkgs }: { packages.default = nixpkgs.legacyPackages.x86_64-linux.upx; }; }",
                "flake.nix:1:89: attribute `upx` is not in an attribute set",
            ),
        ] {
            std::fs::write(folder.path().join("flake.nix"), text).unwrap();
            let error = read(folder.path()).err().unwrap().to_string();
            let error = error.replace(&format!("{}/", folder.path().display()), "");
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }
}
