# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_eepsocks_global_optspecs
    string join \n config= data-dir= sam= h/help V/version
end

function __fish_eepsocks_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_eepsocks_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_eepsocks_using_subcommand
    set -l cmd (__fish_eepsocks_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c eepsocks -n "__fish_eepsocks_needs_command" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_needs_command" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_needs_command" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_needs_command" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -s V -l version -d 'Print version'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "run" -d 'Serve SOCKS, opening every stream through an I2P router\'s SAM v3 bridge'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "demo" -d 'Start an offline I2P network in this process (emissary routers on loopback) with an eepsite named demo.i2p, and serve SOCKS into it: curl --socks5-hostname 127.0.0.1:4447 http://demo.i2p/'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "exec" -d 'Run COMMAND with only I2P reachable: in its own user, network, mount and PID namespaces, whose only way out is the running eepsocks (names through its DNS, TCP through its transparent port), under an identity of its own. Prints a report of what was refused at exit; exits with COMMAND\'s code. docs/exec.md'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "resolve" -d 'Print the b32 (and base64, when known) of an I2P name'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "addressbook" -d 'The address book (hosts.txt format, in the data directory), looked up before the router\'s'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "keys" -d 'Key files in the i2pd / Java I2P binary layout'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "status" -d 'Show the running proxy\'s status: each listener\'s identity, session, streams, bytes and last error (--json: the status endpoint\'s document)'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "doctor" -d 'Check the running proxy as a user would reach it: ports file and process, status endpoint, each listener\'s session, the router\'s SAM bridge, a name lookup and, with --name, a stream through SOCKS. One line per check; exits non-zero on a failure'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "b32" -d 'Print the b32 address of the running proxy\'s listener (the only one, or LISTENER), from <data_dir>/public/ports.json'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "import-config" -d 'Convert the SOCKS proxies of an i2pd.conf, tunnels.conf or Java i2ptunnel.config into an eepsocks config (printed); what has no equivalent is listed on stderr'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "hash-password" -d 'Read a password on stdin and print the value to store for it in [proxy.auth] (PBKDF2-HMAC-SHA256, salted)'
complete -c eepsocks -n "__fish_eepsocks_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand run" -l listen -d 'SOCKS listen address of the (first) listener, loopback only [default: 127.0.0.1:4447]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand run" -l router -d 'auto: the SAM bridge (--sam) if one answers, else the embedded router [default: auto]' -r -f -a "auto\t''
sam\t''
embedded\t''"
complete -c eepsocks -n "__fish_eepsocks_using_subcommand run" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand run" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand run" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand run" -l transient -d 'Use new identities for this run only (no key files)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand run" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand demo" -l listen -d 'SOCKS listen address of the (first) listener [default: 127.0.0.1:4447, or the config\'s]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand demo" -l dir -d 'Keep the network here, so a restart has the same routers, site and identity [default: a new temporary directory, removed at exit]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand demo" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand demo" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand demo" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand demo" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand exec" -l identity -d 'A persistent identity (same b32 every run), kept in <data_dir>/exec/NAME.dat [default: a new transient identity per exec]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand exec" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand exec" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand exec" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand exec" -l quiet -d 'Only one summary line at exit, and only when something was refused'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand exec" -l isolate-ipc -d 'Also hide X11, D-Bus and $XDG_RUNTIME_DIR sockets (programs could ask host processes to reach the network for them)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand exec" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand resolve" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand resolve" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand resolve" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand resolve" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -f -a "list" -d 'List names and their b32 addresses'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -f -a "add" -d 'Add or replace a name: NAME BASE64-DESTINATION (or b32)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -f -a "remove" -d 'Remove a name'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -f -a "import" -d 'Merge a hosts.txt file, or i2pd\'s addresses.csv (names already in the book are kept)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and not __fish_seen_subcommand_from list add remove import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from list" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from list" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from list" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from add" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from add" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from add" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from remove" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from remove" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from remove" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from import" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from import" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from import" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from help" -f -a "list" -d 'List names and their b32 addresses'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add or replace a name: NAME BASE64-DESTINATION (or b32)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a name'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from help" -f -a "import" -d 'Merge a hosts.txt file, or i2pd\'s addresses.csv (names already in the book are kept)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand addressbook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -f -a "show" -d 'Show a key file\'s b32 address and key types (never the private keys)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -f -a "generate" -d 'Create a new key file through the router (never overwrites)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -f -a "export" -d 'Copy a listener\'s key file (NAME.dat in the data directory) out to FILE, for i2pd or Java I2P (same binary layout). Never overwrites'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -f -a "import" -d 'Copy an i2pd / Java I2P key file into the data directory as NAME.dat (the identity of the listener NAME), keeping its b32'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and not __fish_seen_subcommand_from show generate export import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from show" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from show" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from show" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from generate" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from generate" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from generate" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from export" -l name -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from export" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from export" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from export" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from import" -l name -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from import" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from import" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from import" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show a key file\'s b32 address and key types (never the private keys)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Create a new key file through the router (never overwrites)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "export" -d 'Copy a listener\'s key file (NAME.dat in the data directory) out to FILE, for i2pd or Java I2P (same binary layout). Never overwrites'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "import" -d 'Copy an i2pd / Java I2P key file into the data directory as NAME.dat (the identity of the listener NAME), keeping its b32'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand status" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand status" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand status" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand status" -l json -d 'Print the status endpoint\'s JSON document as it is'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand status" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand doctor" -l name -d 'Also open a stream to this I2P name or b32 (port 80, or NAME:PORT)' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand doctor" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand doctor" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand doctor" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand b32" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand b32" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand b32" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand b32" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand import-config" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand import-config" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand import-config" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand import-config" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand hash-password" -l config -d 'TOML configuration file' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand hash-password" -l data-dir -d 'Directory for key files and the address book [default: ~/.local/share/eepsocks]' -r -F
complete -c eepsocks -n "__fish_eepsocks_using_subcommand hash-password" -l sam -d 'The router\'s SAM bridge [default: 127.0.0.1:7656]' -r
complete -c eepsocks -n "__fish_eepsocks_using_subcommand hash-password" -s h -l help -d 'Print help'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "run" -d 'Serve SOCKS, opening every stream through an I2P router\'s SAM v3 bridge'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "demo" -d 'Start an offline I2P network in this process (emissary routers on loopback) with an eepsite named demo.i2p, and serve SOCKS into it: curl --socks5-hostname 127.0.0.1:4447 http://demo.i2p/'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "exec" -d 'Run COMMAND with only I2P reachable: in its own user, network, mount and PID namespaces, whose only way out is the running eepsocks (names through its DNS, TCP through its transparent port), under an identity of its own. Prints a report of what was refused at exit; exits with COMMAND\'s code. docs/exec.md'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "resolve" -d 'Print the b32 (and base64, when known) of an I2P name'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "addressbook" -d 'The address book (hosts.txt format, in the data directory), looked up before the router\'s'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "keys" -d 'Key files in the i2pd / Java I2P binary layout'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "status" -d 'Show the running proxy\'s status: each listener\'s identity, session, streams, bytes and last error (--json: the status endpoint\'s document)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "doctor" -d 'Check the running proxy as a user would reach it: ports file and process, status endpoint, each listener\'s session, the router\'s SAM bridge, a name lookup and, with --name, a stream through SOCKS. One line per check; exits non-zero on a failure'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "b32" -d 'Print the b32 address of the running proxy\'s listener (the only one, or LISTENER), from <data_dir>/public/ports.json'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "import-config" -d 'Convert the SOCKS proxies of an i2pd.conf, tunnels.conf or Java i2ptunnel.config into an eepsocks config (printed); what has no equivalent is listed on stderr'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "hash-password" -d 'Read a password on stdin and print the value to store for it in [proxy.auth] (PBKDF2-HMAC-SHA256, salted)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and not __fish_seen_subcommand_from run demo exec resolve addressbook keys status doctor b32 import-config hash-password help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from addressbook" -f -a "list" -d 'List names and their b32 addresses'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from addressbook" -f -a "add" -d 'Add or replace a name: NAME BASE64-DESTINATION (or b32)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from addressbook" -f -a "remove" -d 'Remove a name'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from addressbook" -f -a "import" -d 'Merge a hosts.txt file, or i2pd\'s addresses.csv (names already in the book are kept)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "show" -d 'Show a key file\'s b32 address and key types (never the private keys)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "generate" -d 'Create a new key file through the router (never overwrites)'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "export" -d 'Copy a listener\'s key file (NAME.dat in the data directory) out to FILE, for i2pd or Java I2P (same binary layout). Never overwrites'
complete -c eepsocks -n "__fish_eepsocks_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "import" -d 'Copy an i2pd / Java I2P key file into the data directory as NAME.dat (the identity of the listener NAME), keeping its b32'
