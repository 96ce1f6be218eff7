# kiln's stand-ins for nixpkgs, flake-utils, gomod2nix and nix2container, for
# `kiln init --from-nix` (src/nixfile/eval.rs). Real Nix evaluates the user's own files with
# these as their inputs: every function kiln maps returns the arguments it was given, marked
# with its name (`__kiln_call`) and where each argument was written (`__kiln_positions`), so
# let, inherit, rec, imports and interpolation are Nix's own. Nothing here builds or fetches.
{ flakeDir, system }:
let
  systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
  perSystem = value: builtins.listToAttrs (map (name: { inherit name value; }) systems);

  pkgs = import ./nixpkgs { inherit system; };
  inherit (pkgs.__kiln) call pkg lib gomod2nixPkgs;

  nixpkgs = {
    outPath = ./nixpkgs;
    legacyPackages = perSystem pkgs;
    inherit lib;
  };
  flake-utils = {
    lib = {
      defaultSystems = systems;
      allSystems = systems;
      system = builtins.listToAttrs (map (name: { inherit name; value = name; }) systems);
      eachSystem = _: f: builtins.mapAttrs (_: value: { ${system} = value; }) (f system);
      eachDefaultSystem = f: builtins.mapAttrs (_: value: { ${system} = value; }) (f system);
      flattenTree = tree: tree;
      mkApp = { drv, name ? drv.pname or drv.name, exePath ? drv.passthru.exePath or "/bin/${name}" }:
        { type = "app"; program = "${drv}${exePath}"; };
    };
  };
  gomod2nix = {
    legacyPackages = perSystem gomod2nixPkgs;
    packages = perSystem { default = pkg "gomod2nix"; };
    overlays.default = _: _: gomod2nixPkgs;
  };
  nix2container = {
    packages = perSystem {
      nix2container = {
        buildImage = call "nix2container.buildImage";
        buildLayer = call "nix2container.buildLayer";
        pullImage = call "nix2container.pullImage";
      };
    };
  };
  known = { inherit nixpkgs flake-utils gomod2nix nix2container; };

  flake = import (flakeDir + "/flake.nix");
  inputNames = builtins.attrNames (builtins.functionArgs flake.outputs);
  # An input kiln has no stand-in for: using any attribute of it is Nix's error, naming it.
  unknownInput = name: { outPath = "@kiln-input:${name}@"; __kiln_input = name; };
  inputs = builtins.listToAttrs (map
    (name: {
      inherit name;
      value = if name == "self" then self else known.${name} or (unknownInput name);
    })
    inputNames);
  outputs = flake.outputs inputs;
  self = outputs // { outPath = flakeDir; };

  # The value as JSON can hold it: paths as strings (never copied to a store), functions as
  # markers, a kiln call as its name, arguments and their positions.
  walk = depth: value:
    if depth > 64 then { __kiln_too_deep = true; }
    else if builtins.isFunction value then { __kiln_function = true; }
    else if builtins.isPath value then { __kiln_path = toString value; }
    else if builtins.isList value then map (walk (depth + 1)) value
    else if builtins.isAttrs value then
      if value ? __kiln_call then {
        inherit (value) __kiln_call __kiln_positions;
        __kiln_args = walk (depth + 1) value.__kiln_args;
      }
      else if value ? __kiln_pkg then { inherit (value) __kiln_pkg; }
      else if value ? __kiln_input then { inherit (value) __kiln_input; }
      else builtins.mapAttrs (_: walk (depth + 1)) value
    else value;
  pick = name: if outputs ? ${name} then { ${name} = walk 0 (outputs.${name}.${system} or outputs.${name}); } else { };
in
{ inherit system; } // pick "packages" // pick "apps" // pick "defaultPackage" // {
  # The other outputs by name only (devShells, checks, overlays, …): never evaluated, so a
  # function the stand-ins lack there cannot fail the conversion; kiln lists them.
  __kiln_other_outputs = builtins.filter
    (name: !(builtins.elem name [ "packages" "apps" "defaultPackage" ]))
    (builtins.attrNames outputs);
}
