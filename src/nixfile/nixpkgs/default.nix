# kiln's stand-in for nixpkgs (see standin.nix): `import nixpkgs { overlays = [ … ]; }` gives
# these functions and packages, each function returning the arguments it was given, marked.
{ overlays ? [ ], system ? "x86_64-linux", ... }:
let
  systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
  # A function kiln maps: its arguments, as data. A package's output path is a marker that
  # `"${package}/bin/NAME"` keeps, so the image's command can be turned into `/bin/NAME`.
  call = name: args:
    (if builtins.isAttrs args then args else { }) // {
      __kiln_call = name;
      __kiln_args = args;
      __kiln_positions =
        if builtins.isAttrs args
        then builtins.mapAttrs (attribute: _: builtins.unsafeGetAttrPos attribute args) args
        else { };
      outPath = "@kiln-out:${if builtins.isAttrs args then args.pname or args.name or name else name}@";
    };
  # A package kiln knows by name (cacert, tzdata, …).
  pkg = name: { __kiln_pkg = name; inherit name; outPath = "@kiln-pkg:${name}@"; };

  lib = {
    inherit systems;
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    fakeSha256 = lib.fakeHash;
    cleanSource = source: source;
    sourceByRegex = source: _: source;
    optional = condition: value: if condition then [ value ] else [ ];
    optionals = condition: values: if condition then values else [ ];
    optionalAttrs = condition: attrs: if condition then attrs else { };
    optionalString = condition: text: if condition then text else "";
    concatStringsSep = builtins.concatStringsSep;
    mapAttrs = builtins.mapAttrs;
    genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
    licenses = { mit = "MIT"; asl20 = "Apache-2.0"; bsd3 = "BSD-3-Clause"; mpl20 = "MPL-2.0"; };
    platforms = { linux = systems; unix = systems; all = systems; };
    maintainers = { };
  };

  gomod2nixPkgs = {
    buildGoApplication = call "buildGoApplication";
    mkGoEnv = call "mkGoEnv";
    gomod2nix = pkg "gomod2nix";
  };

  base = final: gomod2nixPkgs // {
    __kiln = { inherit call pkg lib systems gomod2nixPkgs; };
    inherit lib system;
    buildGoModule = call "buildGoModule";
    buildEnv = call "buildEnv";
    mkShell = call "mkShell";
    callPackage = function: overrides:
      let f = if builtins.isFunction function then function else import function;
      in f (builtins.intersectAttrs (builtins.functionArgs f) (final // { pkgs = final; }) // overrides);
    dockerTools = {
      buildImage = call "dockerTools.buildImage";
      buildLayeredImage = call "dockerTools.buildLayeredImage";
      streamLayeredImage = call "dockerTools.streamLayeredImage";
      fakeNss = pkg "dockerTools.fakeNss";
      caCertificates = pkg "dockerTools.caCertificates";
      binSh = pkg "dockerTools.binSh";
      usrBinEnv = pkg "dockerTools.usrBinEnv";
    };
    cacert = pkg "cacert";
    tzdata = pkg "tzdata";
    busybox = pkg "busybox";
    bash = pkg "bash";
    bashInteractive = pkg "bashInteractive";
    coreutils = pkg "coreutils";
    go = pkg "go";
    go_1_21 = pkg "go_1_21";
    go_1_22 = pkg "go_1_22";
    go_1_23 = pkg "go_1_23";
    go_1_24 = pkg "go_1_24";
    go_1_25 = pkg "go_1_25";
    gopls = pkg "gopls";
    gotools = pkg "gotools";
    golangci-lint = pkg "golangci-lint";
  };

  # The overlays applied as nixpkgs applies them (each sees the final set and the one before).
  final = builtins.foldl' (previous: overlay: previous // overlay final previous) (base final) overlays;

in
final
